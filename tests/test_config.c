/* test_config.c -- the serve settings table: defaults, each value kind
 * (strings, whole numbers, sizes, durations, booleans) with its bounds,
 * error messages that name the option, and config files with their line
 * numbers. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "leadscore/error.h"
#include "testutil.h"

#define DAY_MS 86400000LL

static char dir[512];
static char path[600];

static void setup(void)
{
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/leadscore.conf", dir);
}

static void teardown(void)
{
    tu_rmtree(dir);
}

static void write_file(const char *text)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fputs(text, fp) >= 0, 1);
    ck_assert_int_eq(fclose(fp), 0);
}

/* Sets name=value, asserting success. */
static void set_ok(config *cfg, const char *name, const char *value)
{
    char err[256] = "";
    int rc = config_set(cfg, name, value, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "--%s %s refused (%d): %s", name, value, rc, err);
}

/* Sets name=value, asserting LS_EINVAL, a message naming the option, and
 * that the old setting stayed. */
static void set_bad(config *cfg, const char *name, const char *value)
{
    char err[256] = "", want[64];
    config before = *cfg;
    int rc = config_set(cfg, name, value, err, sizeof err);
    ck_assert_msg(rc == LS_EINVAL, "--%s \"%s\" accepted (%d)", name, value, rc);
    snprintf(want, sizeof want, "--%s", name);
    ck_assert_msg(strstr(err, want) != NULL, "message \"%s\" does not name %s", err, want);
    ck_assert_msg(memcmp(&before, cfg, sizeof before) == 0, "--%s \"%s\" changed the config", name, value);
}

/* ------------------------------------------------------------------ */

START_TEST(defaults_match_the_table)
{
    config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    config_defaults(&cfg);
    ck_assert_str_eq(cfg.data_dir, "./leadscore-data");
    ck_assert_str_eq(cfg.model_path, "models/default.json");
    ck_assert_str_eq(cfg.bind, "tcp://127.0.0.1:5555");
    ck_assert_str_eq(cfg.pull, "tcp://127.0.0.1:5556");
    ck_assert_uint_eq(cfg.max_frame, 1048576);
    ck_assert_uint_eq(cfg.max_events, 10000);
    ck_assert_uint_eq(cfg.max_string, 256);
    ck_assert_uint_eq(cfg.max_customers, 1000);
    ck_assert_int_eq(cfg.dedupe_window_ms, 7 * DAY_MS);
    ck_assert_int_eq(cfg.sync, 1);
    ck_assert_int_eq(cfg.workers, 2);
    ck_assert_uint_eq(cfg.commit_max_events, 50000);
    ck_assert_uint_eq(cfg.pull_max_events, 5000);
    ck_assert_int_eq(cfg.commit_window_ms, 2);
    ck_assert_uint_eq(cfg.map_size, 1ULL << 30);
    ck_assert_uint_eq(cfg.map_max, 256ULL << 30);
}
END_TEST

START_TEST(every_table_row_is_sound)
{
    config cfg;
    int n = 0;
    config_defaults(&cfg);
    for (const config_option *o = config_table(); o->name; o++, n++) {
        ck_assert_ptr_nonnull(o->defval);
        ck_assert_ptr_nonnull(o->help);
        ck_assert_msg(strlen(o->help) > 10, "--%s has no real help", o->name);
        set_ok(&cfg, o->name, o->defval); /* every default parses */
        for (const config_option *p = config_table(); p < o; p++)
            ck_assert_str_ne(p->name, o->name);
    }
    ck_assert_int_ge(n, 14);
    /* setting the defaults again changes nothing */
    config again;
    config_defaults(&again);
    ck_assert_mem_eq(&cfg, &again, sizeof cfg);
}
END_TEST

START_TEST(sizes)
{
    config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "max-frame", "64KiB");
    ck_assert_uint_eq(cfg.max_frame, 65536);
    set_ok(&cfg, "max-frame", "2MiB");
    ck_assert_uint_eq(cfg.max_frame, 2 << 20);
    set_ok(&cfg, "max-frame", "4096");
    ck_assert_uint_eq(cfg.max_frame, 4096);
    set_ok(&cfg, "max-frame", "64");         /* the lower bound */
    ck_assert_uint_eq(cfg.max_frame, 64);
    set_ok(&cfg, "max-frame", "256MiB");     /* the upper bound */
    ck_assert_uint_eq(cfg.max_frame, 256u << 20);
    set_ok(&cfg, "max-frame", "10K");        /* decimal units too */
    ck_assert_uint_eq(cfg.max_frame, 10000);
    set_ok(&cfg, "max-frame", "1kib");       /* any case */
    ck_assert_uint_eq(cfg.max_frame, 1024);
    set_bad(&cfg, "max-frame", "63");
    set_bad(&cfg, "max-frame", "257MiB");
    set_bad(&cfg, "max-frame", "1.5MiB");
    set_bad(&cfg, "max-frame", "lots");
    set_bad(&cfg, "max-frame", "");
    set_bad(&cfg, "max-frame", "-1");
    set_bad(&cfg, "max-frame", "12 KiB");
    set_bad(&cfg, "max-frame", "12XB");
    set_ok(&cfg, "max-batch", "1");
    ck_assert_uint_eq(cfg.max_events, 1);
    set_bad(&cfg, "max-batch", "0");
    set_bad(&cfg, "max-batch", "1000001");
    set_ok(&cfg, "max-string", "256");
    set_bad(&cfg, "max-string", "257");
    set_bad(&cfg, "max-string", "0");
    set_ok(&cfg, "map-size", "1TiB");
    ck_assert_uint_eq(cfg.map_size, 1ULL << 40);
    set_bad(&cfg, "map-size", "1KiB");
    set_bad(&cfg, "map-size", "18446744073709551615"); /* would be negative as int64 */
}
END_TEST

START_TEST(durations)
{
    config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "commit-window", "2ms");
    ck_assert_int_eq(cfg.commit_window_ms, 2);
    set_ok(&cfg, "commit-window", "0");
    ck_assert_int_eq(cfg.commit_window_ms, 0);
    set_ok(&cfg, "commit-window", "1s");
    ck_assert_int_eq(cfg.commit_window_ms, 1000);
    set_bad(&cfg, "commit-window", "2s");  /* above 1000 ms */
    set_ok(&cfg, "dedupe-window", "7d");
    ck_assert_int_eq(cfg.dedupe_window_ms, 7 * DAY_MS);
    set_ok(&cfg, "dedupe-window", "1.5d");
    ck_assert_int_eq(cfg.dedupe_window_ms, 3 * DAY_MS / 2);
    set_ok(&cfg, "dedupe-window", "36h");
    ck_assert_int_eq(cfg.dedupe_window_ms, 36 * 3600000LL);
    set_ok(&cfg, "dedupe-window", "3650d");
    set_bad(&cfg, "dedupe-window", "3651d");
    set_bad(&cfg, "dedupe-window", "-1d");
    set_bad(&cfg, "dedupe-window", "7 days");
    set_bad(&cfg, "dedupe-window", "week");
    set_bad(&cfg, "dedupe-window", "");
    /* a duration below 1 ms is not silently 0 (for slow-ms, 0 is "off") */
    set_bad(&cfg, "slow-ms", "0.05ms");
    set_bad(&cfg, "slow-ms", "0.0009");
    ck_assert_int_eq(cfg.slow_ms, 0);
    set_ok(&cfg, "slow-ms", "0.000s");
    set_ok(&cfg, "slow-ms", "1.5ms");
    ck_assert_int_eq(cfg.slow_ms, 1);
    /* --slow-ms reads a bare number as its name says, in ms (it once took
     * "5" for 5 s); a unit still says what it says; elsewhere bare is s */
    set_ok(&cfg, "slow-ms", "5");
    ck_assert_int_eq(cfg.slow_ms, 5);
    set_ok(&cfg, "slow-ms", "2s");
    ck_assert_int_eq(cfg.slow_ms, 2000);
    set_ok(&cfg, "slow-ms", "3600000");
    ck_assert_int_eq(cfg.slow_ms, 3600000);
    set_bad(&cfg, "slow-ms", "3600001");
    set_ok(&cfg, "drain-timeout", "5");
    ck_assert_int_eq(cfg.drain_timeout_ms, 5000);
}
END_TEST

START_TEST(booleans_ints_and_strings)
{
    config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "log-level", "debug");
    set_bad(&cfg, "log-level", "loud"); /* refused where it is read, as any bad value */
    ck_assert_str_eq(cfg.log_level, "debug");
    set_ok(&cfg, "sync", "off");
    ck_assert_int_eq(cfg.sync, 0);
    set_ok(&cfg, "sync", "on");
    ck_assert_int_eq(cfg.sync, 1);
    set_ok(&cfg, "sync", "FALSE");
    ck_assert_int_eq(cfg.sync, 0);
    set_ok(&cfg, "sync", "yes");
    ck_assert_int_eq(cfg.sync, 1);
    set_ok(&cfg, "sync", "0");
    ck_assert_int_eq(cfg.sync, 0);
    set_bad(&cfg, "sync", "maybe");
    set_bad(&cfg, "sync", "");
    set_bad(&cfg, "sync", "2");

    set_ok(&cfg, "workers", "8");
    ck_assert_int_eq(cfg.workers, 8);
    set_ok(&cfg, "workers", "64");
    set_bad(&cfg, "workers", "0");
    set_bad(&cfg, "workers", "65");
    set_bad(&cfg, "workers", "2x");
    set_bad(&cfg, "workers", "");
    set_bad(&cfg, "workers", "99999999999999999999");

    set_ok(&cfg, "data", "/var/lib/leadscore");
    ck_assert_str_eq(cfg.data_dir, "/var/lib/leadscore");
    set_ok(&cfg, "bind", "ipc:///tmp/ls.sock");
    ck_assert_str_eq(cfg.bind, "ipc:///tmp/ls.sock");
    set_bad(&cfg, "data", "");
    static char longer[CONFIG_PATH_MAX + 1];
    memset(longer, 'p', CONFIG_PATH_MAX);
    set_bad(&cfg, "data", longer);          /* no room for the NUL */
    longer[CONFIG_PATH_MAX - 1] = '\0';
    set_ok(&cfg, "data", longer);           /* the longest that fits */
    ck_assert_uint_eq(strlen(cfg.data_dir), CONFIG_PATH_MAX - 1);
    char bind[300];
    memset(bind, 'b', sizeof bind - 1);
    bind[sizeof bind - 1] = '\0';
    set_bad(&cfg, "bind", bind);
}
END_TEST

START_TEST(messages_quote_the_value)
{
    config cfg;
    char err[256] = "";
    config_defaults(&cfg);
    ck_assert_int_eq(config_set(&cfg, "max-frame", "huge", err, sizeof err), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--max-frame"));
    ck_assert_ptr_nonnull(strstr(err, "\"huge\""));
    /* no buffer is fine */
    ck_assert_int_eq(config_set(&cfg, "max-frame", "huge", NULL, 0), LS_EINVAL);
}
END_TEST

/* A duration out of range names the option's range, not an example that
 * may itself be refused ("500ms" was offered to --abandoned-cart-after,
 * which takes 1 s to 3650 d). */
START_TEST(duration_messages_name_the_range)
{
    static const struct { const char *name, *value, *range; } cases[] = {
        {"abandoned-cart-after", "500ms", "from 1s to 3650d"},
        {"audience-refresh", "0", "from 1s to 3650d"},
        {"trigger-retention", "59s", "from 1m to 3650d"},
        {"drain-timeout", "2h", "from 100ms to 1h"},
        {"commit-window", "2s", "from 0 to 1s"},
        {"dedupe-window", "week", "from 0 to 3650d"},
    };
    config cfg;
    config_defaults(&cfg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        ck_assert_int_eq(config_set(&cfg, cases[i].name, cases[i].value, err, sizeof err), LS_EINVAL);
        ck_assert_msg(strstr(err, cases[i].range) != NULL, "--%s %s: \"%s\" does not say %s", cases[i].name,
                      cases[i].value, err, cases[i].range);
        ck_assert_msg(strstr(err, "e.g. 500ms") == NULL, "\"%s\" offers an example", err);
    }
}
END_TEST

START_TEST(unknown_option_is_not_found)
{
    config cfg;
    char err[256] = "";
    config_defaults(&cfg);
    ck_assert_int_eq(config_set(&cfg, "max-frames", "1", err, sizeof err), LS_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "max-frames"));
    ck_assert_int_eq(config_set(&cfg, "", "1", err, sizeof err), LS_ENOTFOUND);
    ck_assert_int_eq(config_set(&cfg, "--max-frame", "1MiB", err, sizeof err), LS_ENOTFOUND);
    ck_assert_int_eq(config_set(&cfg, "Max-Frame", "1MiB", err, sizeof err), LS_ENOTFOUND);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

START_TEST(file_with_comments_blank_lines_and_spaces)
{
    config cfg;
    char err[512] = "";
    write_file("# leadscore serve settings\n"
               "\n"
               "data = /srv/leadscore\n"
               "   max-frame=128KiB   \n"
               "\tsync\t=\toff\t# not durable, bulk load\n"
               "   # an indented comment\n"
               "\n"
               "dedupe-window =3d\r\n"
               "workers= 4"); /* no newline at the end */
    config_defaults(&cfg);
    int rc = config_load_file(&cfg, path, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "refused: %s", err);
    ck_assert_str_eq(cfg.data_dir, "/srv/leadscore");
    ck_assert_uint_eq(cfg.max_frame, 128 * 1024);
    ck_assert_int_eq(cfg.sync, 0);
    ck_assert_int_eq(cfg.dedupe_window_ms, 3 * DAY_MS);
    ck_assert_int_eq(cfg.workers, 4);
    /* untouched options keep their defaults */
    ck_assert_str_eq(cfg.bind, "tcp://127.0.0.1:5555");
    ck_assert_uint_eq(cfg.max_events, 10000);

    /* a file saved with a UTF-8 byte order mark reads the same (its first
     * name was "\xEF\xBB\xBFworkers", unknown); log levels in any case */
    write_file("\xEF\xBB\xBFworkers = 3\nlog-level = DEBUG\n");
    config_defaults(&cfg);
    rc = config_load_file(&cfg, path, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "refused: %s", err);
    ck_assert_int_eq(cfg.workers, 3);

    /* an empty file is fine */
    write_file("");
    config_defaults(&cfg);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_OK);
    ck_assert_uint_eq(cfg.max_frame, 1048576);
}
END_TEST

/* The automation settings as the issue names them: underscores stand for
 * dashes in a file, and the values land where the writer reads them. */
START_TEST(file_automation_settings_with_underscores)
{
    config cfg;
    char err[512] = "";
    write_file("abandoned_cart_after = 2s\n"
               "trigger_cooldowns = abandoned_cart=0s,win_back=14d\n"
               "trigger-retention = 2d\n"
               "trigger_max = 5000\n"
               "audience_refresh = 1m\n"
               "triggers = on\n");
    config_defaults(&cfg);
    ck_assert_int_eq(cfg.abandoned_cart_after_ms, 3600000);  /* the default: 1 h */
    ck_assert_int_eq(cfg.audience_refresh_ms, 15 * 60000);
    int rc = config_load_file(&cfg, path, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "refused: %s", err);
    ck_assert_int_eq(cfg.abandoned_cart_after_ms, 2000);
    ck_assert_str_eq(cfg.trigger_cooldowns, "abandoned_cart=0s,win_back=14d");
    ck_assert_int_eq(cfg.trigger_retention_ms, 2 * DAY_MS);
    ck_assert_uint_eq(cfg.trigger_max, 5000);
    ck_assert_int_eq(cfg.audience_refresh_ms, 60000);
    ck_assert_int_eq(cfg.triggers, 1);
    /* below the bound: refused with the line */
    write_file("abandoned_cart_after = 10ms\n");
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_EINVAL);
    ck_assert_msg(strstr(err, ":1:") != NULL, "no line in: %s", err);
}
END_TEST

START_TEST(file_bad_value_reports_its_line)
{
    config cfg;
    char err[512] = "", want[700];
    write_file("# comment\n"
               "workers = 3\n"
               "max-frame = 12 parsecs\n"
               "sync = off\n");
    config_defaults(&cfg);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_EINVAL);
    snprintf(want, sizeof want, "%s:3: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "message \"%s\" does not start with \"%s\"", err, want);
    ck_assert_ptr_nonnull(strstr(err, "--max-frame"));
    ck_assert_int_eq(cfg.workers, 3); /* lines before the error were applied */
    ck_assert_int_eq(cfg.sync, 1);    /* lines after it were not */
}
END_TEST

START_TEST(file_unknown_key_reports_its_line)
{
    config cfg;
    char err[512] = "", want[700];
    write_file("\n"
               "colour = blue\n");
    config_defaults(&cfg);
    int rc = config_load_file(&cfg, path, err, sizeof err);
    ck_assert_int_eq(rc, LS_EINVAL);
    snprintf(want, sizeof want, "%s:2: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "message \"%s\" does not start with \"%s\"", err, want);
    ck_assert_ptr_nonnull(strstr(err, "colour"));

    /* a line that is not name = value */
    write_file("sync = on\nworkers 4\n");
    config_defaults(&cfg);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_EINVAL);
    snprintf(want, sizeof want, "%s:2: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "message \"%s\"", err);

    /* an empty value */
    write_file("data =\n");
    config_defaults(&cfg);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_EINVAL);
    snprintf(want, sizeof want, "%s:1: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "message \"%s\"", err);
    ck_assert_str_eq(cfg.data_dir, "./leadscore-data");
}
END_TEST

START_TEST(file_line_too_long)
{
    config cfg;
    char err[512] = "";
    size_t n = 5000;
    char *text = malloc(n + 32);
    strcpy(text, "sync = on\ndata = ");
    size_t at = strlen(text);
    memset(text + at, 'd', n);
    strcpy(text + at + n, "\n");
    write_file(text);
    free(text);
    config_defaults(&cfg);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, ":2: "));
}
END_TEST

/* A NUL byte is an error naming its line: it once cut the line short
 * (the rest silently ignored) or read as "line too long". */
START_TEST(file_nul_byte_reports_its_line)
{
    static const struct { const char *text; size_t len; } files[] = {
        {"sync = on\nmax-frame = 1MiB\0garbage\n", 35},
        {"sync = on\nmax-frame = 1MiB\0garbage", 34},
        {"sync = on\n\0", 11},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        config cfg;
        char err[512] = "";
        FILE *fp = fopen(path, "w");
        ck_assert_ptr_nonnull(fp);
        ck_assert_uint_eq(fwrite(files[i].text, 1, files[i].len, fp), files[i].len);
        ck_assert_int_eq(fclose(fp), 0);
        config_defaults(&cfg);
        ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof err), LS_EINVAL);
        ck_assert_msg(strstr(err, ":2: ") != NULL && strstr(err, "NUL byte") != NULL, "file %zu: \"%s\"", i, err);
        ck_assert_ptr_nonnull(strstr(err, path));
    }
}
END_TEST

START_TEST(missing_file_is_an_io_error)
{
    config cfg;
    char err[512] = "", missing[700];
    snprintf(missing, sizeof missing, "%s/no-such.conf", dir);
    config_defaults(&cfg);
    ck_assert_int_eq(config_load_file(&cfg, missing, err, sizeof err), LS_EIO);
    ck_assert_ptr_nonnull(strstr(err, missing));
    ck_assert_str_eq(cfg.data_dir, "./leadscore-data");
    /* a directory opens but cannot be read: an error, not an empty file
     * (serve once started on its defaults) */
    err[0] = '\0';
    ck_assert_int_eq(config_load_file(&cfg, dir, err, sizeof err), LS_EIO);
    ck_assert_ptr_nonnull(strstr(err, "cannot read config file"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* config_parse_size                                                   */
/* ------------------------------------------------------------------ */

START_TEST(parse_size_values_and_overflow)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        {"0", 0}, {"1", 1}, {"512B", 512}, {"64KiB", 65536}, {"1MiB", 1048576}, {"64GiB", 64ULL << 30},
        {"2TiB", 2ULL << 40}, {"3K", 3000}, {"5M", 5000000}, {"7G", 7000000000ULL}, {"1gib", 1ULL << 30},
        {"18446744073709551615", UINT64_MAX}, {"17179869183GiB", 17179869183ULL << 30},
        {"16777215TiB", 16777215ULL << 40}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1234;
        ck_assert_msg(config_parse_size(ok[i].s, &v) == LS_OK, "\"%s\" refused", ok[i].s);
        ck_assert_msg(v == ok[i].v, "\"%s\" = %llu", ok[i].s, (unsigned long long)v);
    }
    static const char *const bad[] = {
        "18446744073709551616",  /* 2^64 */
        "99999999999999999999999",
        "17179869184GiB",        /* 2^34 GiB = 2^64 */
        "16777216TiB",           /* 2^24 TiB = 2^64 */
        "18446744073709552K",    /* > 2^64 in units of 1000 */
        "", "-1", "-0", "KiB", "1.5K", "1 K", "1KiBs", "1PiB", "0x10", "ten"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 1234;
        ck_assert_msg(config_parse_size(bad[i], &v) == LS_EINVAL, "\"%s\" accepted as %llu", bad[i],
                      (unsigned long long)v);
        ck_assert_uint_eq(v, 1234);
    }
    uint64_t v;
    ck_assert_int_eq(config_parse_size(NULL, &v), LS_EINVAL);
}
END_TEST

/* EXPECTS A FIX in src/config.c config_parse_size(): only a '-' in the very
 * first character is refused, and strtoull() skips leading white space and
 * then accepts a sign, so " -1" parses as 18446744073709551615 (LS_OK).
 * A negative size must be LS_EINVAL whatever precedes the sign. */
START_TEST(parse_size_refuses_a_sign_after_white_space)
{
    static const char *const bad[] = {" -1", "\t-5", " -1KiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 1234;
        ck_assert_msg(config_parse_size(bad[i], &v) == LS_EINVAL, "\"%s\" accepted as %llu", bad[i],
                      (unsigned long long)v);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("set");
    tcase_add_test(tc, defaults_match_the_table);
    tcase_add_test(tc, every_table_row_is_sound);
    tcase_add_test(tc, sizes);
    tcase_add_test(tc, durations);
    tcase_add_test(tc, booleans_ints_and_strings);
    tcase_add_test(tc, messages_quote_the_value);
    tcase_add_test(tc, unknown_option_is_not_found);
    tcase_add_test(tc, duration_messages_name_the_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, file_with_comments_blank_lines_and_spaces);
    tcase_add_test(tc, file_bad_value_reports_its_line);
    tcase_add_test(tc, file_unknown_key_reports_its_line);
    tcase_add_test(tc, file_line_too_long);
    tcase_add_test(tc, file_nul_byte_reports_its_line);
    tcase_add_test(tc, missing_file_is_an_io_error);
    tcase_add_test(tc, file_automation_settings_with_underscores);
    suite_add_tcase(s, tc);

    tc = tcase_create("size");
    tcase_add_test(tc, parse_size_values_and_overflow);
    tcase_add_test(tc, parse_size_refuses_a_sign_after_white_space); /* expects a fix */
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
