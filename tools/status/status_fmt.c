#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "status_fmt.h"

char *
sfmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 "B", n);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	/* Round down so that 1023.99K never prints as a four-digit 1024K. */
	if (v < 10)
		snprintf(buf, len, "%.2f%c", floor(v * 100) / 100, units[u]);
	else if (v < 100)
		snprintf(buf, len, "%.1f%c", floor(v * 10) / 10, units[u]);
	else
		snprintf(buf, len, "%.0f%c", floor(v), units[u]);
	return buf;
}

char *
sfmt_rate(double rate, char *buf, size_t len)
{
	size_t n;

	if (rate < 0 || isnan(rate)) {
		snprintf(buf, len, "-");
		return buf;
	}
	sfmt_bytes(rate >= 1.8e19 ? UINT64_MAX : (uint64_t)rate, buf, len);
	for (n = 0; n < len && buf[n] != '\0'; n++)
		;
	if (n < len)
		snprintf(buf + n, len - n, "/s");
	return buf;
}

char *
sfmt_duration(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s >= 86400)
		snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400,
		    s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRId64 ":%02" PRId64 ":%02" PRId64,
		    s / 3600, s % 3600 / 60, s % 60);
	else
		snprintf(buf, len, "%" PRId64 ":%02" PRId64, s / 60, s % 60);
	return buf;
}

char *
sfmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

double
sfmt_percent(uint64_t done, uint64_t total)
{
	if (total == 0)
		return 100.0;
	if (done >= total)
		return 100.0;
	/* Down, so that 99.99% is not shown as done. */
	return floor((double)done * 1000.0 / (double)total) / 10.0;
}

int64_t
sfmt_eta(uint64_t done, uint64_t total, double rate)
{
	double s;

	if (done >= total)
		return 0;
	if (!(rate > 0))
		return -1;
	s = ceil((double)(total - done) / rate);
	return s > 1e15 ? -1 : (int64_t)s;
}
