/* Unit tests of service/watch.c: which patterns are accepted, the removal
 * reasons, and watching over a direct (peer-to-peer) connection, where a
 * signal has no destination and goes on the watcher's own connection; the
 * counting that decides when to look whether a watcher reads, and a direct
 * watcher that stops reading losing its watch (one that reads keeping it). */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "protocol.h"
#include "watch.h"

static void test_patterns(void) {
        static const char *const good[] = {
                "**", "a", "camera/*", "camera/**", "*/frame", "cam?ra/[ab]*", "x/[!a-c]", "x/[]a]",
                "a.b:c@d-e_f/*", "*",
        };
        static const struct {
                const char *pattern;
                const char *says;
        } bad[] = {
                { "", "empty" },
                { "/a", "empty component" },
                { "a/", "empty component" },
                { "a//b", "empty component" },
                { "a/**/b", "'**'" },
                { "**x", "'**'" },
                { "cam/[ab", "without its ']'" },
                { "x y", "' '" },
                { "a\\*", "'\\'" },
                { "a/[a/b]", "without its ']'" },
                { "[a$]", "'$'" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = watch_check_pattern(good[i], &error);
                if (r < 0)
                        g_error("'%s' refused: %s", good[i], error.message);
                sd_bus_error_free(&error);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = watch_check_pattern(bad[i].pattern, &error);
                g_assert_cmpint(r, <, 0);
                g_assert_cmpstr(error.name, ==, SD_BUS_ERROR_INVALID_ARGS);
                if (!strstr(error.message, bad[i].says) ||
                    (bad[i].pattern[0] && !strstr(error.message, bad[i].pattern)))
                        g_error("'%s': message '%s' lacks '%s' or the pattern", bad[i].pattern, error.message,
                                bad[i].says);
                sd_bus_error_free(&error);
        }
        {
                char *long_one = g_strnfill(WATCH_PATTERN_MAX + 1, 'a');
                sd_bus_error error = SD_BUS_ERROR_NULL;
                g_assert_cmpint(watch_check_pattern(long_one, &error), <, 0);
                g_assert_nonnull(strstr(error.message, "longer than"));
                sd_bus_error_free(&error);
                g_free(long_one);
        }
}

static void test_reasons(void) {
        g_assert_cmpstr(watch_reason_from_why("expired"), ==, "expired");
        g_assert_cmpstr(watch_reason_from_why("replaced"), ==, "replaced");
        g_assert_cmpstr(watch_reason_from_why("retrieved once"), ==, "retrieved-once");
        g_assert_cmpstr(watch_reason_from_why("depositor's connection closed"), ==, "connection-closed");
        g_assert_cmpstr(watch_reason_from_why("removed by :1.5 (uid 0)"), ==, "removed");
}

/* ---- a direct connection ---------------------------------------------- */

typedef struct Direct {
        sd_bus *server, *client;
        Watches watches;
        Peer peer;
        int watch_result;
        char *heard;            /* "MEMBER NAME DESTINATION", last signal */
        int n_heard;
        bool replied;
} Direct;

static int server_watch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Direct *d = userdata;
        int r = watches_handle_watch(&d->watches, m, &d->peer, error);
        d->watch_result = r;
        if (r <= 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable server_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Watch", "asa{sv}", "", server_watch, 0),
        SD_BUS_VTABLE_END,
};

static int on_client_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Direct *d = userdata;
        const char *name = NULL, *dest = sd_bus_message_get_destination(m);

        if (!sd_bus_message_is_signal(m, FDB_INTERFACE, NULL))
                return 0;
        g_assert_cmpint(sd_bus_message_read_basic(m, 's', &name), >=, 0);
        g_free(d->heard);
        d->heard = g_strdup_printf("%s %s %s", sd_bus_message_get_member(m), name, dest ? dest : "(none)");
        d->n_heard++;
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Direct *d = userdata;
        g_assert_false(sd_bus_message_is_method_error(m, NULL));
        d->replied = true;
        return 0;
}

/* Runs both ends until cond holds (bounded by a count, not by time). */
static void pump(Direct *d, bool *cond, int *count, int want) {
        for (int i = 0; i < 10000; i++) {
                if ((cond && *cond) || (count && *count >= want))
                        return;
                while (sd_bus_process(d->server, NULL) > 0)
                        ;
                while (sd_bus_process(d->client, NULL) > 0)
                        ;
                (void) sd_bus_wait(d->client, 1000);
        }
        g_error("the direct connection did not deliver");
}

static bool always_visible(const Peer *p, const Entry *e, void *userdata) {
        return true;
}

static int no_info(sd_bus_message *m, const Entry *e) {
        return sd_bus_message_append(m, "a{sv}", 0);
}

static void test_direct(void) {
        Direct d = { .peer = { .uid = 1000, .ready = true } };
        sd_id128_t id;
        int sv[2];
        Entry *e = entry_new("cam/front");
        const char *patterns[] = { "cam/*", NULL };

        g_assert_nonnull(e);
        watches_init(&d.watches);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);

        g_assert_cmpint(sd_bus_new(&d.server), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(d.server, sv[0], sv[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(d.server, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_add_object_vtable(d.server, NULL, FDB_OBJECT_PATH, FDB_INTERFACE, server_vtable, &d),
                        >=, 0);
        g_assert_cmpint(sd_bus_start(d.server), >=, 0);

        g_assert_cmpint(sd_bus_new(&d.client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(d.client, sv[1], sv[1]), >=, 0);
        g_assert_cmpint(sd_bus_add_filter(d.client, NULL, on_client_signal, &d), >=, 0);
        g_assert_cmpint(sd_bus_start(d.client), >=, 0);

        {
                sd_bus_message *call = NULL;
                g_assert_cmpint(sd_bus_message_new_method_call(d.client, &call, NULL, FDB_OBJECT_PATH, FDB_INTERFACE,
                                                               "Watch"),
                                >=, 0);
                g_assert_cmpint(sd_bus_message_append_strv(call, (char **) patterns), >=, 0);
                g_assert_cmpint(sd_bus_message_append(call, "a{sv}", 0), >=, 0);
                g_assert_cmpint(sd_bus_call_async(d.client, NULL, call, on_reply, &d, 0), >=, 0);
                sd_bus_message_unref(call);
        }
        pump(&d, &d.replied, NULL, 0);
        g_assert_cmpint(d.watch_result, ==, 1);
        g_assert_true(watches_any(&d.watches));

        /* A matching entry: the signal goes on the connection, no destination. */
        watches_entry_added(&d.watches, e, always_visible, no_info, NULL);
        pump(&d, NULL, &d.n_heard, 1);
        g_assert_cmpstr(d.heard, ==, "EntryAdded cam/front (none)");
        watches_entry_removed(&d.watches, e, "expired", always_visible, NULL);
        pump(&d, NULL, &d.n_heard, 2);
        g_assert_cmpstr(d.heard, ==, "EntryRemoved cam/front (none)");

        /* The peer goes (its connection closed): its watch goes with it. */
        watches_forget_peer(&d.watches, &d.peer);
        g_assert_false(watches_any(&d.watches));
        watches_entry_added(&d.watches, e, always_visible, no_info, NULL);
        g_assert_cmpint(d.n_heard, ==, 2);

        watches_done(&d.watches);
        entry_free(e);
        g_free(d.heard);
        sd_bus_flush_close_unref(d.client);
        sd_bus_flush_close_unref(d.server);
}

/* ---- watchers that do not read ----------------------------------------- */

static void test_backlog(void) {
        WatchBacklog b = {};
        unsigned asks = 0;

        /* One look per WATCH_ASK_MARK signals, not one per signal. */
        for (unsigned i = 0; i < 10 * WATCH_ASK_MARK; i++)
                if (watch_backlog_note(&b)) {
                        asks++;
                        watch_backlog_asked(&b);
                }
        g_assert_cmpuint(asks, ==, 10);
        /* A look still under way (not asked again): the count goes on and
         * the next signal asks again. */
        for (unsigned i = 0; i < WATCH_ASK_MARK - 1; i++)
                g_assert_false(watch_backlog_note(&b));
        g_assert_true(watch_backlog_note(&b));
        g_assert_true(watch_backlog_note(&b));

        g_assert_false(watch_backlog_over(0, 0));
        g_assert_false(watch_backlog_over(WATCH_QUEUED_MAX, WATCH_QUEUED_BYTES_MAX));
        g_assert_true(watch_backlog_over(WATCH_QUEUED_MAX + 1, 0));
        g_assert_true(watch_backlog_over(1, WATCH_QUEUED_BYTES_MAX + 1));
}

/* Sets up d: a server and client on a socket pair, the client watching
 * "**" (charged to acct when not NULL). */
static void direct_setup(Direct *d, Accounting *acct) {
        const char *patterns[] = { "**", NULL };
        sd_id128_t id;
        int sv[2];

        *d = (Direct) { .peer = { .uid = 1000, .ready = true } };
        watches_init(&d->watches);
        d->watches.acct = acct;
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);
        g_assert_cmpint(sd_bus_new(&d->server), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(d->server, sv[0], sv[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(d->server, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_add_object_vtable(d->server, NULL, FDB_OBJECT_PATH, FDB_INTERFACE, server_vtable, d),
                        >=, 0);
        g_assert_cmpint(sd_bus_start(d->server), >=, 0);
        g_assert_cmpint(sd_bus_new(&d->client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(d->client, sv[1], sv[1]), >=, 0);
        g_assert_cmpint(sd_bus_add_filter(d->client, NULL, on_client_signal, d), >=, 0);
        g_assert_cmpint(sd_bus_start(d->client), >=, 0);

        sd_bus_message *call = NULL;
        g_assert_cmpint(sd_bus_message_new_method_call(d->client, &call, NULL, FDB_OBJECT_PATH, FDB_INTERFACE, "Watch"),
                        >=, 0);
        g_assert_cmpint(sd_bus_message_append_strv(call, (char **) patterns), >=, 0);
        g_assert_cmpint(sd_bus_message_append(call, "a{sv}", 0), >=, 0);
        g_assert_cmpint(sd_bus_call_async(d->client, NULL, call, on_reply, d, 0), >=, 0);
        sd_bus_message_unref(call);
        pump(d, &d->replied, NULL, 0);
        g_assert_cmpint(d->watch_result, ==, 1);
}

static void direct_teardown(Direct *d) {
        watches_done(&d->watches);
        g_free(d->heard);
        sd_bus_flush_close_unref(d->client);
        sd_bus_close_unref(d->server);
}

/* A direct watcher that never reads: once more than WATCH_QUEUED_MAX
 * signals wait in the broker's write queue (the socket full), its watch
 * ends, its ACCT_WATCHES goes back, and nothing more is queued for it. */
static void test_direct_stalled(void) {
        Accounting acct;
        Direct d;
        Entry *e = entry_new("cam/front");
        uint64_t queued = 0, queued_after = 0;
        unsigned sent = 0;

        g_assert_nonnull(e);
        accounting_init(&acct);
        direct_setup(&d, &acct);
        g_assert_cmpuint(accounting_usage(&acct, 1000, ACCT_WATCHES), ==, 1);

        /* The client stops reading; the "broker" keeps telling it. */
        while (watches_any(&d.watches) && sent < 10 * WATCH_QUEUED_MAX) {
                watches_entry_added(&d.watches, e, always_visible, no_info, NULL);
                sent++;
        }
        g_assert_cmpint(sd_bus_get_n_queued_write(d.server, &queued), >=, 0);
        g_test_message("watch ended after %u signals, %" G_GUINT64_FORMAT " queued in the broker", sent, queued);
        g_assert_false(watches_any(&d.watches));
        g_assert_cmpuint(d.watches.n_ended, ==, 1);
        g_assert_cmpuint(sent, >, WATCH_QUEUED_MAX);
        g_assert_cmpuint(queued, >, WATCH_QUEUED_MAX);
        g_assert_cmpuint(queued, <=, WATCH_QUEUED_MAX + WATCH_ASK_MARK);
        g_assert_cmpuint(accounting_usage(&acct, 1000, ACCT_WATCHES), ==, 0);

        for (unsigned i = 0; i < 100; i++)
                watches_entry_added(&d.watches, e, always_visible, no_info, NULL);
        g_assert_cmpint(sd_bus_get_n_queued_write(d.server, &queued_after), >=, 0);
        g_assert_cmpuint(queued_after, <=, queued);

        direct_teardown(&d);
        accounting_done(&acct);
        entry_free(e);
}

/* A direct watcher that reads hears every one of many signals (more than
 * the budget in all) and keeps its watch. */
static void test_direct_reading(void) {
        Direct d;
        Entry *e = entry_new("cam/front");
        const int total = 3 * WATCH_QUEUED_MAX;

        g_assert_nonnull(e);
        direct_setup(&d, NULL);
        for (int i = 0; i < total; i++) {
                watches_entry_added(&d.watches, e, always_visible, no_info, NULL);
                if (i % 64 == 63)
                        pump(&d, NULL, &d.n_heard, i + 1);
        }
        pump(&d, NULL, &d.n_heard, total);
        g_assert_cmpint(d.n_heard, ==, total);
        g_assert_true(watches_any(&d.watches));
        g_assert_cmpuint(d.watches.n_ended, ==, 0);
        direct_teardown(&d);
        entry_free(e);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/watch/patterns", test_patterns);
        g_test_add_func("/watch/reasons", test_reasons);
        g_test_add_func("/watch/direct-connection", test_direct);
        g_test_add_func("/watch/backlog", test_backlog);
        g_test_add_func("/watch/direct-stalled", test_direct_stalled);
        g_test_add_func("/watch/direct-reading", test_direct_reading);
        return g_test_run();
}
