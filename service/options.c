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

/* ---- one walker for every a{sv} ----------------------------------------- */

typedef int (*option_parse_fn)(sd_bus_message *m, const char *key, void *userdata, sd_bus_error *error);

typedef struct OptionKey {
        const char *name;
        option_parse_fn parse;  /* reads the variant (option_enter ... exit) */
} OptionKey;

/* Walks the a{sv} at m. Each key must be in keys (NULL-terminated), at most
 * once: "last one wins" would hide a caller's bug. what names the call in
 * the error for an unknown key ("deposit"), which lists the keys. */
static int parse_dict(sd_bus_message *m, const OptionKey *keys, const char *what, void *userdata,
                      sd_bus_error *error) {
        unsigned seen = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                size_t i;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                for (i = 0; keys[i].name && strcmp(keys[i].name, key) != 0; i++)
                        ;
                if (!keys[i].name) {
                        char list[256] = "";
                        for (size_t j = 0; keys[j].name; j++) {
                                strncat(list, j == 0 ? "" : keys[j + 1].name ? ", " : " and ",
                                        sizeof list - strlen(list) - 1);
                                strncat(list, keys[j].name, sizeof list - strlen(list) - 1);
                        }
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option '%s'; %s takes %s.",
                                                 key, what, list);
                }
                if (seen & (1U << i))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option '%s' is given twice.", key);
                seen |= 1U << i;

                r = keys[i].parse(m, key, userdata, error);
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

static int read_access_option(sd_bus_message *m, const char *key, int *ret, sd_bus_error *error) {
        const char *v;
        int r = read_string_option(m, key, &v, error);
        if (r < 0)
                return r;
        if (parse_access(v, ret) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '%s' must be 'read-only', 'write-only' or 'read-write', not '%s'.", key,
                                         v);
        return 0;
}

/* ---- Deposit, DepositMany, CreateMemory ---------------------------------- */

static int deposit_allow(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_allow(m, o, error);
}

static int deposit_access(sd_bus_message *m, const char *key, void *userdata, sd_bus_error *error) {
        DepositOptions *o = userdata;
        const char *v;
        int r = read_string_option(m, key, &v, error);
        if (r < 0)
                return r;
        if (strcmp(v, "read-only") != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'access' at deposit takes only 'read-only', not '%s'.", v);
        o->read_only = true;
        return 0;
}

static int deposit_seal(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_bool_option(m, key, &((DepositOptions *) o)->seal, error);
}

static int deposit_lifetime(sd_bus_message *m, const char *key, void *userdata, sd_bus_error *error) {
        DepositOptions *o = userdata;
        const char *v;
        int r = read_string_option(m, key, &v, error);
        if (r < 0)
                return r;
        if (strcmp(v, "persistent") == 0)
                o->persistent = true;
        else if (strcmp(v, "connection") != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'lifetime' must be 'connection' or 'persistent', not '%s'.", v);
        return 0;
}

static int deposit_timeout(sd_bus_message *m, const char *key, void *userdata, sd_bus_error *error) {
        DepositOptions *o = userdata;
        int r = read_u64_option(m, key, &o->timeout_usec, error);
        if (r < 0)
                return r;
        if (o->timeout_usec == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'timeout-usec' must be at least 1.");
        if (o->timeout_usec > UINT64_MAX / 4)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'timeout-usec' is too large.");
        return 0;
}

static int deposit_once(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_bool_option(m, key, &((DepositOptions *) o)->once, error);
}

static int deposit_replace(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_bool_option(m, key, &((DepositOptions *) o)->replace, error);
}

static int deposit_description(sd_bus_message *m, const char *key, void *userdata, sd_bus_error *error) {
        DepositOptions *o = userdata;
        const char *v;
        int r = read_string_option(m, key, &v, error);
        if (r < 0)
                return r;
        if (strlen(v) > DESCRIPTION_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'description' is %zu bytes; at most %d are allowed.", strlen(v),
                                         DESCRIPTION_MAX);
        free(o->description);
        o->description = strdup(v);
        return o->description ? 0 : -ENOMEM;
}

int options_parse_deposit(sd_bus_message *m, DepositOptions *o, sd_bus_error *error) {
        static const OptionKey keys[] = {
                { "allow", deposit_allow },
                { "access", deposit_access },
                { "seal", deposit_seal },
                { "lifetime", deposit_lifetime },
                { "timeout-usec", deposit_timeout },
                { "once", deposit_once },
                { "replace", deposit_replace },
                { "description", deposit_description },
                {},
        };
        return parse_dict(m, keys, "deposit", o, error);
}

/* ---- Retrieve, RetrieveMany --------------------------------------------- */

static int retrieve_access(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_access_option(m, key, &((RetrieveOptions *) o)->accmode, error);
}

static int retrieve_reopen(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_bool_option(m, key, &((RetrieveOptions *) o)->reopen, error);
}

static int retrieve_wait(sd_bus_message *m, const char *key, void *userdata, sd_bus_error *error) {
        RetrieveOptions *o = userdata;
        int r = read_u64_option(m, key, &o->wait_usec, error);
        if (r < 0)
                return r;
        if (o->wait_usec > WAIT_USEC_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'wait-usec' is %" PRIu64 "; at most 300000000 (300 s) is allowed.",
                                         o->wait_usec);
        return 0;
}

int options_parse_retrieve(sd_bus_message *m, RetrieveOptions *o, sd_bus_error *error) {
        static const OptionKey keys[] = {
                { "access", retrieve_access },
                { "reopen", retrieve_reopen },
                { "wait-usec", retrieve_wait },
                {},
        };
        *o = (RetrieveOptions) { .accmode = -1 };
        return parse_dict(m, keys, "retrieve", o, error);
}

/* ---- List, OpenPath ------------------------------------------------------ */

static int list_prefix(sd_bus_message *m, const char *key, void *ret, sd_bus_error *error) {
        return read_string_option(m, key, ret, error);
}

int options_parse_list_filter(sd_bus_message *m, const char **ret_prefix, sd_bus_error *error) {
        static const OptionKey keys[] = {
                { "prefix", list_prefix },
                {},
        };
        const char *prefix = "";
        int r = parse_dict(m, keys, "List's filter", &prefix, error);
        if (r < 0)
                return r;
        *ret_prefix = prefix;
        return 0;
}

typedef struct OpenPathOptions {
        int accmode;
        bool nonblock;
} OpenPathOptions;

static int open_path_access(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_access_option(m, key, &((OpenPathOptions *) o)->accmode, error);
}

static int open_path_nonblock(sd_bus_message *m, const char *key, void *o, sd_bus_error *error) {
        return read_bool_option(m, key, &((OpenPathOptions *) o)->nonblock, error);
}

int options_parse_open_path(sd_bus_message *m, int *ret_accmode, bool *ret_nonblock, sd_bus_error *error) {
        static const OptionKey keys[] = {
                { "access", open_path_access },
                { "nonblock", open_path_nonblock },
                {},
        };
        OpenPathOptions o = { .accmode = O_RDONLY };
        int r = parse_dict(m, keys, "OpenPath", &o, error);
        if (r < 0)
                return r;
        *ret_accmode = o.accmode;
        *ret_nonblock = o.nonblock;
        return 0;
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


