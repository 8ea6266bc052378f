/* options.c: parsing option dictionaries and names. See options.h. */
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "names.h"

void deposit_options_done(DepositOptions *o) {
        acl_subjects_free(o->allow, o->n_allow);
        free(o->description);
        *o = (DepositOptions) {};
}

/* ---- options ---------------------------------------------------------- */

/* Reads the value of option key, which must have signature sig. */
static int option_enter(sd_bus_message *m, const char *key, const char *sig, sd_bus_error *error) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != 'v' || strcmp(contents, sig) != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '%s' must be of type '%s', not '%s'.", key, sig, contents);
        return sd_bus_message_enter_container(m, 'v', sig);
}

static int read_bool_option(sd_bus_message *m, const char *key, bool *ret, sd_bus_error *error) {
        int b, r;
        r = option_enter(m, key, "b", error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "b", &b);
        if (r < 0)
                return r;
        *ret = b;
        return sd_bus_message_exit_container(m);
}

static int read_u64_option(sd_bus_message *m, const char *key, uint64_t *ret, sd_bus_error *error) {
        int r = option_enter(m, key, "t", error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "t", ret);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_string_option(sd_bus_message *m, const char *key, const char **ret, sd_bus_error *error) {
        int r = option_enter(m, key, "s", error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", ret);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int parse_access(const char *v, int *ret) {
        if (strcmp(v, "read-only") == 0)
                *ret = O_RDONLY;
        else if (strcmp(v, "write-only") == 0)
                *ret = O_WRONLY;
        else if (strcmp(v, "read-write") == 0)
                *ret = O_RDWR;
        else
                return -EINVAL;
        return 0;
}

/* Rejects a key given twice: "last one wins" would hide a caller's bug. */
static int check_duplicate(unsigned *seen, unsigned bit, const char *key, sd_bus_error *error) {
        if (*seen & bit)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option '%s' is given twice.", key);
        *seen |= bit;
        return 0;
}

static int read_allow(sd_bus_message *m, DepositOptions *o, sd_bus_error *error) {
        _cleanup_(strv_freep) char **strv = NULL;
        Subject *subjects;
        size_t n = 0;
        int r;

        r = option_enter(m, "allow", "as", error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &strv);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        while (strv && strv[n]) /* an empty array reads as NULL */
                n++;
        if (n > ACL_SUBJECTS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'allow' names %zu subjects; at most %d are allowed.", n,
                                         ACL_SUBJECTS_MAX);
        subjects = calloc(n ? n : 1, sizeof *subjects);
        if (!subjects)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = acl_subject_parse(strv[i], &subjects[i]);
                if (r < 0) {
                        acl_subjects_free(subjects, i);
                        if (r == -ENOENT)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'allow': subject '%s' names no known user or group.",
                                                         strv[i]);
                        if (r == -EINVAL)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'allow': '%s' is not a subject; use user:NAME, uid:N, "
                                                         "group:NAME, gid:N, label:CONTEXT or everyone.",
                                                         strv[i]);
                        return r;
                }
        }
        o->allow = subjects;
        o->n_allow = n;
        return 0;
}

int options_parse_deposit(sd_bus_message *m, DepositOptions *o, sd_bus_error *error) {
        unsigned seen = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *v;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;

                if (strcmp(key, "allow") == 0) {
                        r = check_duplicate(&seen, 1 << 0, key, error);
                        if (r >= 0)
                                r = read_allow(m, o, error);
                } else if (strcmp(key, "access") == 0) {
                        r = check_duplicate(&seen, 1 << 1, key, error);
                        if (r >= 0)
                                r = read_string_option(m, key, &v, error);
                        if (r >= 0 && strcmp(v, "read-only") != 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'access' at deposit takes only 'read-only', not '%s'.",
                                                         v);
                        o->read_only = true;
                } else if (strcmp(key, "seal") == 0) {
                        r = check_duplicate(&seen, 1 << 2, key, error);
                        if (r >= 0)
                                r = read_bool_option(m, key, &o->seal, error);
                } else if (strcmp(key, "lifetime") == 0) {
                        r = check_duplicate(&seen, 1 << 3, key, error);
                        if (r >= 0)
                                r = read_string_option(m, key, &v, error);
                        if (r >= 0) {
                                if (strcmp(v, "persistent") == 0)
                                        o->persistent = true;
                                else if (strcmp(v, "connection") != 0)
                                        return sd_bus_error_setf(
                                                error, SD_BUS_ERROR_INVALID_ARGS,
                                                "Option 'lifetime' must be 'connection' or 'persistent', not '%s'.", v);
                        }
                } else if (strcmp(key, "timeout-usec") == 0) {
                        r = check_duplicate(&seen, 1 << 4, key, error);
                        if (r >= 0)
                                r = read_u64_option(m, key, &o->timeout_usec, error);
                        if (r >= 0 && o->timeout_usec == 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'timeout-usec' must be at least 1.");
                        if (r >= 0 && o->timeout_usec > UINT64_MAX / 4)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'timeout-usec' is too large.");
                } else if (strcmp(key, "once") == 0) {
                        r = check_duplicate(&seen, 1 << 5, key, error);
                        if (r >= 0)
                                r = read_bool_option(m, key, &o->once, error);
                } else if (strcmp(key, "replace") == 0) {
                        r = check_duplicate(&seen, 1 << 6, key, error);
                        if (r >= 0)
                                r = read_bool_option(m, key, &o->replace, error);
                } else if (strcmp(key, "description") == 0) {
                        r = check_duplicate(&seen, 1 << 7, key, error);
                        if (r >= 0)
                                r = read_string_option(m, key, &v, error);
                        if (r >= 0 && strlen(v) > DESCRIPTION_MAX)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'description' is %zu bytes; at most %d are allowed.",
                                                         strlen(v), DESCRIPTION_MAX);
                        if (r >= 0) {
                                free(o->description);
                                o->description = strdup(v);
                                if (!o->description)
                                        return -ENOMEM;
                        }
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown option '%s'; deposit takes allow, access, seal, lifetime, "
                                                 "timeout-usec, once, replace and description.",
                                                 key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int options_parse_retrieve(sd_bus_message *m, RetrieveOptions *o, sd_bus_error *error) {
        unsigned seen = 0;
        int r;

        *o = (RetrieveOptions) { .accmode = -1 };
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *v;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "access") == 0) {
                        r = check_duplicate(&seen, 1 << 0, key, error);
                        if (r >= 0)
                                r = read_string_option(m, key, &v, error);
                        if (r >= 0 && parse_access(v, &o->accmode) < 0)
                                return sd_bus_error_setf(
                                        error, SD_BUS_ERROR_INVALID_ARGS,
                                        "Option 'access' must be 'read-only', 'write-only' or 'read-write', not '%s'.",
                                        v);
                } else if (strcmp(key, "reopen") == 0) {
                        r = check_duplicate(&seen, 1 << 1, key, error);
                        if (r >= 0)
                                r = read_bool_option(m, key, &o->reopen, error);
                } else if (strcmp(key, "wait-usec") == 0) {
                        r = check_duplicate(&seen, 1 << 2, key, error);
                        if (r >= 0)
                                r = read_u64_option(m, key, &o->wait_usec, error);
                        if (r >= 0 && o->wait_usec > WAIT_USEC_MAX)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option 'wait-usec' is %" PRIu64
                                                         "; at most 300000000 (300 s) is allowed.",
                                                         o->wait_usec);
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown option '%s'; retrieve takes access, reopen and wait-usec.",
                                                 key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int options_check_name(const char *name, sd_bus_error *error) {
        const char *why;
        if (name_is_valid(name, &why))
                return 0;
        /* Do not echo a huge or binary name back; the reason is enough. */
        if (strlen(name) > NAME_MAX_LEN)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid entry name: %s.", why);
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid entry name '%s': %s.", name, why);
}


int options_parse_list_filter(sd_bus_message *m, const char **ret_prefix, sd_bus_error *error) {
        const char *prefix = "";
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "prefix") != 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown filter key '%s'; List takes prefix.", key);
                r = read_string_option(m, key, &prefix, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        *ret_prefix = prefix;
        return 0;
}

int options_parse_open_path(sd_bus_message *m, int *ret_accmode, bool *ret_nonblock, sd_bus_error *error) {
        bool nonblock = false;
        unsigned seen = 0;
        int accmode = O_RDONLY, r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *v;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "access") == 0) {
                        r = check_duplicate(&seen, 1 << 0, key, error);
                        if (r >= 0)
                                r = read_string_option(m, key, &v, error);
                        if (r >= 0 && parse_access(v, &accmode) < 0)
                                return sd_bus_error_setf(
                                        error, SD_BUS_ERROR_INVALID_ARGS,
                                        "Option 'access' must be 'read-only', 'write-only' or 'read-write', not '%s'.",
                                        v);
                } else if (strcmp(key, "nonblock") == 0) {
                        r = check_duplicate(&seen, 1 << 1, key, error);
                        if (r >= 0)
                                r = read_bool_option(m, key, &nonblock, error);
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown option '%s'; OpenPath takes access and nonblock.", key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret_accmode = accmode;
        *ret_nonblock = nonblock;
        return 0;
}
