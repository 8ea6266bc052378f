/* Unit tests of the open pool (service/worker.c) over a real sd-bus
 * connection pair: a stuck open is answered Busy while other calls are
 * answered; its late result is closed; a uid gets at most its share. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "protocol.h"
#include "fdclose.h"
#include "fdcount.h"
#include "worker.h"

typedef struct Ctx {
        sd_event *event;
        sd_bus *server, *client;
        Worker *worker;
        int gate[2];             /* Block's opens wait for a byte here */
        unsigned seq;
} Ctx;

typedef struct Answer {
        unsigned seq;            /* 0: not yet */
        char error[128];
        bool got_fd;
} Answer;

static int open_null(void *arg, int *ret_fd) {
        *ret_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return *ret_fd < 0 ? -errno : 0;
}

static int blocked_open(void *arg, int *ret_fd) {
        Ctx *c = arg;
        char b;
        if (read(c->gate[0], &b, 1) != 1)
                return -EIO;
        return open_null(arg, ret_fd);
}

static int done_reply(sd_bus_message *m, WorkerOp *ops, size_t n_ops, void *ctx, sd_bus_error *error) {
        if (ops[0].result < 0)
                return ops[0].result;
        return sd_bus_reply_method_return(m, "h", ops[0].ret_fd);
}

static int method_open(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Ctx *c = userdata;
        WorkerOp op = WORKER_OP_INIT;
        uint32_t uid;
        int r;

        r = sd_bus_message_read(m, "u", &uid);
        if (r < 0)
                return r;
        op.type = WORKER_OP_CALL;
        op.call = strcmp(sd_bus_message_get_member(m), "Block") == 0 ? blocked_open : open_null;
        op.arg = c;
        r = worker_submit(c->worker, m, uid, "thing", &op, 1, done_reply, NULL, NULL, error);
        return r < 0 ? r : 1;
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Block", "u", "h", method_open, 0),
        SD_BUS_METHOD("Quick", "u", "h", method_open, 0),
        SD_BUS_VTABLE_END,
};

static void ctx_init(Ctx *c) {
        int sv[2];
        sd_id128_t id;

        *c = (Ctx) {};
        g_assert_cmpint(sd_event_new(&c->event), >=, 0);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(pipe2(c->gate, O_CLOEXEC), ==, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);

        g_assert_cmpint(sd_bus_new(&c->server), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(c->server, sv[0], sv[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(c->server, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_negotiate_fds(c->server, 1), >=, 0);
        g_assert_cmpint(sd_bus_start(c->server), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(c->server, c->event, 0), >=, 0);
        g_assert_cmpint(sd_bus_add_object_vtable(c->server, NULL, "/t", "t.T", vtable, c), >=, 0);

        g_assert_cmpint(sd_bus_new(&c->client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(c->client, sv[1], sv[1]), >=, 0);
        g_assert_cmpint(sd_bus_negotiate_fds(c->client, 1), >=, 0);
        g_assert_cmpint(sd_bus_start(c->client), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(c->client, c->event, 0), >=, 0);

        g_assert_cmpint(worker_new(c->event, &c->worker), >=, 0);
}

static void ctx_done(Ctx *c) {
        c->worker = worker_free(c->worker);
        sd_bus_flush_close_unref(c->client);
        sd_bus_flush_close_unref(c->server);
        sd_event_unref(c->event);
        close(c->gate[0]);
        close(c->gate[1]);
}

typedef struct Pending {
        Ctx *c;
        Answer *a;
} Pending;

static int on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Pending *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int fd;

        p->a->seq = ++p->c->seq;
        if (e)
                g_strlcpy(p->a->error, e->name, sizeof p->a->error);
        else if (sd_bus_message_read(m, "h", &fd) >= 0)
                p->a->got_fd = fd >= 0;
        g_free(p);
        return 0;
}

static void call(Ctx *c, const char *method, uint32_t uid, Answer *a) {
        Pending *p = g_new0(Pending, 1);
        p->c = c;
        p->a = a;
        *a = (Answer) {};
        g_assert_cmpint(sd_bus_call_method_async(c->client, NULL, NULL, "/t", "t.T", method, on_answer, p, "u",
                                                 uid),
                        >=, 0);
}

/* Runs the loop until every answer is in (bounded by the test timeout). */
static void run_until(Ctx *c, Answer *a, size_t n) {
        for (;;) {
                bool all = true;
                for (size_t i = 0; i < n; i++)
                        all = all && a[i].seq > 0;
                if (all)
                        return;
                g_assert_cmpint(sd_event_run(c->event, UINT64_MAX), >=, 0);
        }
}

static void test_stuck_open_is_busy(void) {
        Ctx c;
        Answer a[2];
        unsigned before;

        ctx_init(&c);
        worker_set_timeout(c.worker, 200 * 1000);
        call(&c, "Block", 1000, &a[0]);
        call(&c, "Quick", 2000, &a[1]);
        run_until(&c, a, 2);
        g_assert_true(a[1].got_fd);
        g_assert_cmpuint(a[1].seq, <, a[0].seq); /* answered while the other was stuck */
        g_assert_cmpstr(a[0].error, ==, FDB_ERROR_NAME_BUSY);
        g_assert_cmpuint(worker_jobs(c.worker), ==, 1); /* the stuck thread still holds its slot */
        g_assert_true(worker_is_idle(c.worker));

        /* The late result is closed by its thread, and the slot freed. */
        before = count_open_fds();
        g_assert_cmpint(write(c.gate[1], "x", 1), ==, 1);
        for (int i = 0; i < 500 && worker_jobs(c.worker) > 0; i++)
                usleep(10 * 1000);
        g_assert_cmpuint(worker_jobs(c.worker), ==, 0);
        /* The thread frees its ops after giving the slot back, and hands
         * the fds to the closers (service/fdclose.h): wait for both. */
        for (int i = 0; i < 500 && count_open_fds() != before; i++) {
                (void) fdclose_wait_idle(10);
                usleep(10 * 1000);
        }
        g_assert_cmpuint(count_open_fds(), ==, before);
        ctx_done(&c);
}

static void test_fair_share(void) {
        Ctx c;
        Answer a[WORKER_JOBS_MAX + 2];
        size_t n = 0, stuck;

        ctx_init(&c);
        worker_set_timeout(c.worker, 60 * 1000000ULL);
        /* One uid fills what it may, one call at a time. */
        for (;;) {
                call(&c, "Block", 1000, &a[n]);
                while (a[n].seq == 0 && worker_jobs_of(c.worker, 1000) < n + 1)
                        g_assert_cmpint(sd_event_run(c.event, 10 * 1000), >=, 0);
                if (a[n].seq > 0)
                        break;
                n++;
                g_assert_cmpuint(n, <=, WORKER_JOBS_MAX);
        }
        stuck = n;
        g_test_message("uid 1000 got %zu of %u slots", stuck, WORKER_JOBS_MAX);
        g_assert_cmpstr(a[stuck].error, ==, FDB_ERROR_NAME_QUOTA_EXCEEDED);
        g_assert_cmpuint(stuck, >=, 1);
        g_assert_cmpuint(stuck, <, WORKER_JOBS_MAX / 2);

        /* Another uid is still served at once. */
        call(&c, "Quick", 2000, &a[stuck + 1]);
        run_until(&c, &a[stuck + 1], 1);
        g_assert_true(a[stuck + 1].got_fd);

        /* Released, the stuck ones are answered with their fds. */
        for (size_t i = 0; i < stuck; i++)
                g_assert_cmpint(write(c.gate[1], "x", 1), ==, 1);
        run_until(&c, a, stuck);
        for (size_t i = 0; i < stuck; i++)
                g_assert_true(a[i].got_fd);
        ctx_done(&c);
}

/* With an accounting, every job in flight is charged to its uid as
 * ACCT_WORKERS: a uid is refused past MaxWorkersPerUser/its fair share,
 * another uid is served, a job answered Busy stays charged while its thread
 * is stuck, and every charge is given back when the threads return. */
static void test_accounted(void) {
        Accounting acct;
        Ctx c;
        Answer a[WORKER_JOBS_MAX + 2];
        size_t n = 0, stuck;

        accounting_init(&acct);
        ctx_init(&c);
        worker_set_accounting(c.worker, &acct);
        worker_set_timeout(c.worker, 300 * 1000);
        for (;;) {
                call(&c, "Block", 1000, &a[n]);
                while (a[n].seq == 0 && accounting_usage(&acct, 1000, ACCT_WORKERS) < n + 1)
                        g_assert_cmpint(sd_event_run(c.event, 10 * 1000), >=, 0);
                if (a[n].seq > 0 && strcmp(a[n].error, FDB_ERROR_NAME_QUOTA_EXCEEDED) == 0)
                        break;
                n++;
                g_assert_cmpuint(n, <=, WORKER_JOBS_MAX);
        }
        stuck = n;
        g_test_message("uid 1000 got %zu of MaxWorkers=%" G_GUINT64_FORMAT " slots", stuck,
                       acct.limits[ACCT_WORKERS].total);
        g_assert_cmpuint(stuck, >=, 1);
        g_assert_cmpuint(stuck, <=, acct.limits[ACCT_WORKERS].total / 2);
        g_assert_cmpuint(stuck, <=, acct.limits[ACCT_WORKERS].per_user);
        g_assert_cmpuint(accounting_usage(&acct, 1000, ACCT_WORKERS), ==, stuck);

        call(&c, "Quick", 2000, &a[stuck + 1]);
        run_until(&c, &a[stuck + 1], 1);
        g_assert_true(a[stuck + 1].got_fd);
        g_assert_cmpuint(accounting_usage(&acct, 2000, ACCT_WORKERS), ==, 0);

        /* Answered Busy, the stuck ones still hold their slots. */
        run_until(&c, a, stuck);
        for (size_t i = 0; i < stuck; i++)
                g_assert_cmpstr(a[i].error, ==, FDB_ERROR_NAME_BUSY);
        g_assert_cmpuint(accounting_usage(&acct, 1000, ACCT_WORKERS), ==, stuck);
        call(&c, "Quick", 1000, &a[stuck]);
        run_until(&c, &a[stuck], 1);
        g_assert_cmpstr(a[stuck].error, ==, FDB_ERROR_NAME_QUOTA_EXCEEDED);

        /* Their threads come back: the loop gives the slots back. */
        for (size_t i = 0; i < stuck; i++)
                g_assert_cmpint(write(c.gate[1], "x", 1), ==, 1);
        while (!accounting_is_empty(&acct))
                g_assert_cmpint(sd_event_run(c.event, 10 * 1000), >=, 0);
        call(&c, "Quick", 1000, &a[0]);
        run_until(&c, a, 1);
        g_assert_true(a[0].got_fd);
        g_assert_true(accounting_is_empty(&acct));
        ctx_done(&c);
        accounting_done(&acct);
}

/* A reopening as another uid is refused where that uid may not read, and
 * the thread gets its own credentials back. Needs root. */
static void test_reopen_as_depositor(void) {
        char path[] = "/tmp/test-worker-XXXXXX";
        WorkerOp op = WORKER_OP_INIT;
        int fd;

        if (geteuid() != 0) {
                g_test_skip("needs root to take on another uid's credentials");
                return;
        }
        fd = mkstemp(path);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(fchmod(fd, 0600), ==, 0);

        op.type = WORKER_OP_REOPEN;
        op.fd = fd;
        op.kind = FD_KIND_REGULAR;
        op.accmode = O_RDONLY;
        op.as_depositor = true;
        op.uid = 65534;
        worker_run_op(&op);
        g_assert_cmpint(op.result, ==, -EACCES);
        g_assert_cmpint(op.ret_fd, ==, -1);
        g_assert_cmpint(setfsuid((uid_t) -1), ==, 0); /* restored */

        op.uid = 0; /* the owner: allowed by the mode bits alone */
        worker_run_op(&op);
        g_assert_cmpint(op.result, ==, 0);
        g_assert_cmpint(op.ret_fd, >=, 0);
        close(op.ret_fd);
        unlink(path);
        close(fd);

        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        op = (WorkerOp) WORKER_OP_INIT;
        op.type = WORKER_OP_REOPEN;
        op.fd = fd;
        op.kind = FD_KIND_REGULAR;
        op.accmode = O_RDONLY;
        worker_run_op(&op);
        g_assert_cmpint(op.result, ==, -EXDEV);
        close(fd);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/worker/stuck-open-is-busy", test_stuck_open_is_busy);
        g_test_add_func("/worker/fair-share", test_fair_share);
        g_test_add_func("/worker/accounted", test_accounted);
        g_test_add_func("/worker/reopen-as-depositor", test_reopen_as_depositor);
        return g_test_run();
}
