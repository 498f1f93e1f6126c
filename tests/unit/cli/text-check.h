/* Checks shared by the CLI's view tests: fixtures parsed from JSON text,
 * and rendered text measured independently of the code under test, with
 * mbrtowc()/wcwidth() (the tests run in C.UTF-8). Each fails the running
 * cmocka test instead of returning an error. */
#pragma once

#include <jansson.h>
#include <stddef.h>

/* Parse a JSON fixture; fails the test when it does not parse. */
json_t *cli_test_load(const char *text);

/* Display columns of s[0..len), skipping ANSI SGR sequences; fails the
 * test on another escape, invalid UTF-8 or a non-printable character. */
size_t cli_test_columns(const char *s, size_t len);

/* Fail the test unless every line of `out` is terminated and fits in `max`
 * columns; returns the width of the widest. */
size_t cli_test_check_lines(const char *out, size_t max);

/* The line of `out` that contains `needle`, as a malloc'd string; fails the
 * test when there is none. */
char *cli_test_line_with(const char *out, const char *needle);
