/* Unit tests of the deposit transaction (service/deposit.c): a failure at
 * the commit's Nth store, or at the Nth lifetime record (the store's
 * prepare, where the broker allocates entries.c's EntryLife), puts
 * everything back, and leaks no fd and no record. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fdcount.h"
#include "cleanup.h"
#include "deposit.h"
#include "fdclose.h"

typedef struct FakeStore {
        Registry reg;
        unsigned n_add, fail_at; /* fail the fail_at-th add (1-based); 0: never */
        unsigned n_prepare, fail_prepare_at; /* the same for prepare */
        unsigned n_finish;
} FakeStore;

/* Lifetime records alive (prepare's, standing in for EntryLife). */
static unsigned live_records;

static void fake_drop(Entry *e) {
        g_assert_nonnull(e->owner_data);
        free(e->owner_data);
        e->owner_data = NULL;
        live_records--;
}

static int fake_prepare(void *userdata, Entry *e) {
        FakeStore *fs = userdata;
        g_assert_null(e->owner_data);
        if (++fs->n_prepare == fs->fail_prepare_at)
                return -ENOMEM; /* as an allocation that failed */
        e->owner_data = malloc(16);
        g_assert_nonnull(e->owner_data);
        live_records++;
        return 0;
}

static void fake_discard(void *userdata, Entry *e) {
        if (e->owner_data)
                fake_drop(e);
}

static int fake_charge(void *userdata, DepositPlan *plan, sd_bus_error *error) {
        FakeStore *fs = userdata;
        for (size_t i = 0; i < plan->n; i++)
                plan->items[i].old = registry_get(&fs->reg, plan->items[i].name);
        return 0;
}

static int fake_add(void *userdata, Entry *e, Entry *old) {
        FakeStore *fs = userdata;
        if (++fs->n_add == fs->fail_at)
                return -EIO;
        if (old)
                registry_unlink(&fs->reg, old);
        return registry_add(&fs->reg, e);
}

static void fake_undo(void *userdata, Entry *e, Entry *old) {
        FakeStore *fs = userdata;
        registry_unlink(&fs->reg, e);
        if (old)
                g_assert_cmpint(registry_add(&fs->reg, old), ==, 0);
}

static void fake_finish(void *userdata, Entry *e, Entry *old) {
        FakeStore *fs = userdata;
        fs->n_finish++;
        /* Attached without allocating: it is there already. */
        g_assert_nonnull(e->owner_data);
        entry_free(old); /* old entries of this test have no record */
}

static const DepositStore fake_store = {
        .charge = fake_charge,
        .prepare = fake_prepare,
        .discard = fake_discard,
        .add = fake_add,
        .undo = fake_undo,
        .finish = fake_finish,
};

static unsigned count_fds(void) {
        /* Entries of unknown kind (old_entry()'s /dev/null) are closed on a
         * closer thread (service/fdclose.h): count once they are. */
        g_assert_true(fdclose_wait_idle(10000));
        return count_open_fds();
}

static int make_memfd(const char *data) {
        int fd = memfd_create("test-deposit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, data, strlen(data)), ==, (ssize_t) strlen(data));
        return fd;
}

static Entry *old_entry(const char *name) {
        Entry *e = entry_new(name);
        e->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        e->owner_uid = 1000;
        return e;
}

/* Three deposits, the 2nd replacing "b"; the store fails at add fail_at,
 * or at prepare fail_prepare_at. */
static void run_commit_at(unsigned fail_at, unsigned fail_prepare_at) {
        static const char *const names[] = { "a", "b", "c" };
        FakeStore fs = { .fail_at = fail_at, .fail_prepare_at = fail_prepare_at };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        DepositPlan plan;
        int fds[3];
        Entry *old_b, *other;
        unsigned before;
        int r;

        registry_init(&fs.reg);
        fs.reg.drop_owner_data = fake_drop;
        live_records = 0;
        old_b = old_entry("b");
        other = old_entry("z");
        g_assert_cmpint(registry_add(&fs.reg, old_b), ==, 0);
        g_assert_cmpint(registry_add(&fs.reg, other), ==, 0);

        deposit_plan_init(&plan);
        plan.uid = 1000;
        plan.o.replace = true;
        plan.o.seal = true;
        for (size_t i = 0; i < 3; i++) {
                fds[i] = make_memfd(names[i]);
                plan.items[i].name = names[i];
                plan.items[i].fd = fds[i];
                g_assert_cmpint(deposit_plan_item(&plan, &plan.items[i], &error), ==, 0);
                plan.n++;
        }
        before = count_fds();

        r = deposit_commit(&plan, &fake_store, &fs, &error);
        if (fail_prepare_at >= 1 && fail_prepare_at <= 3) {
                g_assert_cmpint(r, ==, -ENOMEM);
                /* Refused before sealing and before storing anything. */
                g_assert_cmpuint(fs.n_prepare, ==, fail_prepare_at);
                g_assert_cmpuint(fs.n_add, ==, 0);
                g_assert_cmpuint(fs.n_finish, ==, 0);
                g_assert_cmpuint(live_records, ==, 0);
                g_assert_cmpuint(fs.reg.n_entries, ==, 2);
                g_assert_true(registry_get(&fs.reg, "b") == old_b);
                g_assert_true(registry_get(&fs.reg, "z") == other);
                g_assert_null(registry_get(&fs.reg, "a"));
                g_assert_null(registry_get(&fs.reg, "c"));
                for (size_t i = 0; i < 3; i++)
                        g_assert_cmpint(fcntl(fds[i], F_GET_SEALS) & F_SEAL_WRITE, ==, 0);
                g_assert_cmpuint(count_fds(), ==, before);
        } else if (fail_at == 0 || fail_at > 3) {
                g_assert_cmpint(r, ==, 0);
                g_assert_cmpuint(live_records, ==, 3);
                g_assert_cmpuint(fs.n_finish, ==, 3);
                g_assert_cmpuint(fs.reg.n_entries, ==, 4);
                for (size_t i = 0; i < 3; i++)
                        g_assert_cmpint(registry_get(&fs.reg, names[i])->fd, !=, fds[i]);
                /* Three duplicates kept, the old entry's /dev/null gone. */
                g_assert_cmpuint(count_fds(), ==, before + 3 - 1);
        } else {
                g_assert_cmpint(r, <, 0);
                g_assert_true(sd_bus_error_is_set(&error));
                g_assert_cmpuint(fs.n_finish, ==, 0);
                g_assert_cmpuint(live_records, ==, 0);
                /* Exactly what was there: the old "b" itself, and "z". */
                g_assert_cmpuint(fs.reg.n_entries, ==, 2);
                g_assert_true(registry_get(&fs.reg, "b") == old_b);
                g_assert_true(registry_get(&fs.reg, "z") == other);
                g_assert_null(registry_get(&fs.reg, "a"));
                g_assert_null(registry_get(&fs.reg, "c"));
                g_assert_cmpuint(count_fds(), ==, before);
        }
        deposit_plan_done(&plan);
        registry_done(&fs.reg);
        /* registry_done() handed back every record still attached. */
        g_assert_cmpuint(live_records, ==, 0);
        for (size_t i = 0; i < 3; i++)
                close(fds[i]);
}

static void run_commit(unsigned fail_at) {
        run_commit_at(fail_at, 0);
}

static void test_no_record_first(void) {
        run_commit_at(0, 1);
}

static void test_no_record_second(void) {
        run_commit_at(0, 2);
}

static void test_no_record_third(void) {
        run_commit_at(0, 3);
}

static void test_commit_ok(void) {
        run_commit(0);
}

static void test_rollback_first(void) {
        run_commit(1);
}

static void test_rollback_second(void) {
        run_commit(2);
}

static void test_rollback_third(void) {
        run_commit(3);
}

/* The plan refuses an unsealable memfd before anything is sealed. */
static void test_plan_refuses_unsealable(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        DepositPlan plan;
        int fd = memfd_create("no-sealing", MFD_CLOEXEC);

        deposit_plan_init(&plan);
        plan.o.seal = true;
        plan.items[0].name = "x";
        plan.items[0].fd = fd;
        plan.n = 1;
        g_assert_cmpint(deposit_plan_item(&plan, &plan.items[0], &error), <, 0);
        g_assert_true(sd_bus_error_has_name(&error, FDB_ERROR_NAME_NOT_SUPPORTED));
        g_assert_nonnull(strstr(error.message, "'x'"));
        deposit_plan_done(&plan);
        close(fd);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/deposit/commit-stores-all", test_commit_ok);
        g_test_add_func("/deposit/rollback-at-first-store", test_rollback_first);
        g_test_add_func("/deposit/rollback-at-second-store", test_rollback_second);
        g_test_add_func("/deposit/rollback-at-third-store", test_rollback_third);
        g_test_add_func("/deposit/no-lifetime-record-first", test_no_record_first);
        g_test_add_func("/deposit/no-lifetime-record-second", test_no_record_second);
        g_test_add_func("/deposit/no-lifetime-record-third", test_no_record_third);
        g_test_add_func("/deposit/plan-refuses-unsealable", test_plan_refuses_unsealable);
        return g_test_run();
}
