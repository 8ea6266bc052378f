/* Unit tests of the state file's depositor gids (service/persist.c): "G"
 * lines are written before their entry and read back into it. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "fdclose.h"
#include "persist.h"

static Entry *restored_entry;

static void on_restored(Entry *e, void *userdata) {
        restored_entry = e;
}

static void test_gids_round_trip(void) {
        g_autofree char *dir = g_dir_make_tmp("test-persist-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "entries.state", NULL);
        g_autofree char *text = NULL;
        const gid_t gids[] = { 10, 44, 65533 };
        Persist ps;
        Registry reg;
        Entry *e;
        char id[32];
        int fd;

        g_assert_nonnull(dir);
        /* persist_enabled() wants a service manager; nothing is sent to it. */
        g_setenv("NOTIFY_SOCKET", "/nonexistent/notify", TRUE);
        g_assert_cmpint(persist_init(&ps, dir), ==, 0);
        g_assert_true(persist_enabled(&ps));

        registry_init(&reg);
        e = entry_new("kept/one");
        e->fd = memfd_create("test-persist", MFD_CLOEXEC);
        e->owner_uid = 1000;
        e->persistent = true;
        e->id = e->store_id = 7;
        g_assert_cmpint(entry_set_depositor_gids(e, gids, G_N_ELEMENTS(gids)), ==, 0);
        g_assert_cmpint(registry_add(&reg, e), ==, 0);
        g_assert_cmpint(persist_save(&ps, &reg), ==, 0);
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_test_message("state file:\n%s", text);
        g_assert_nonnull(strstr(text, "\nG 10,44,65533\nE 7 7 kept/one "));

        /* Restore: the fd comes back as the service manager would pass it. */
        registry_done(&reg);
        /* The entry's fd (kind not classified here) went to a closer thread. */
        g_assert_true(fdclose_wait_idle(10000));
        if (fcntl(SD_LISTEN_FDS_START, F_GETFD) >= 0) {
                g_test_skip("fd 3 is taken in this process; cannot pass an fd as LISTEN_FDS");
                persist_done(&ps);
                return;
        }
        fd = memfd_create("test-persist-passed", 0);
        if (fd != SD_LISTEN_FDS_START) {
                g_assert_cmpint(dup2(fd, SD_LISTEN_FDS_START), ==, SD_LISTEN_FDS_START);
                close(fd);
        }
        snprintf(id, sizeof id, "%d", (int) getpid());
        g_setenv("LISTEN_PID", id, TRUE);
        g_setenv("LISTEN_FDS", "1", TRUE);
        g_setenv("LISTEN_FDNAMES", "e7", TRUE);
        registry_init(&reg);
        g_assert_cmpint(persist_restore(&ps, &reg, on_restored, NULL), ==, 1);
        g_assert_nonnull(restored_entry);
        g_assert_cmpstr(restored_entry->name, ==, "kept/one");
        g_assert_cmpuint(restored_entry->n_depositor_gids, ==, G_N_ELEMENTS(gids));
        g_assert_cmpmem(restored_entry->depositor_gids, sizeof gids, gids, sizeof gids);
        entry_free(restored_entry);
        registry_done(&reg);

        unlink(path);
        rmdir(dir);
        persist_done(&ps);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/persist/gids-round-trip", test_gids_round_trip);
        return g_test_run();
}
