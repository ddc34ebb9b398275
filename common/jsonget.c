/*
 * jsonget: typed reads of one member of a JSON object (jsonget.h).
 */
#include <string.h>

#include <jansson.h>

#include "jsonget.h"

int
jsonget_uint(json_t *o, const char *key, uint64_t max, uint64_t *v)
{
	json_t *j = json_object_get(o, key);
	json_int_t i;

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_integer(j))
		return -1;
	i = json_integer_value(j);
	if (i < 0 || (uint64_t)i > max)
		return -1;
	*v = (uint64_t)i;
	return 1;
}

int
jsonget_bool(json_t *o, const char *key, int *v)
{
	json_t *j = json_object_get(o, key);

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_boolean(j))
		return -1;
	*v = json_is_true(j);
	return 1;
}

int
jsonget_str(json_t *o, const char *key, const char **s)
{
	json_t *j = json_object_get(o, key);

	if (j == NULL || json_is_null(j))
		return 0;
	/*
	 * A document loaded with JSON_ALLOW_NUL, or built with
	 * json_stringn(), may hold "\u0000": such a string reads shorter.
	 */
	if (!json_is_string(j) ||
	    strlen(json_string_value(j)) != json_string_length(j))
		return -1;
	*s = json_string_value(j);
	return 1;
}
