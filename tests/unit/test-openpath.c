/* Unit tests of OpenPath's open (service/openpath.c through worker.c's
 * worker_run_op, on this thread): it opens as the owner of each directory
 * on the way and of the file, with no effective capability, and the thread
 * gets its own credentials back; no fd is left behind. Needs root (to make
 * files of other uids and to take their identity). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "fdcount.h"
#include "worker.h"

#define NOBODY ((uid_t) 65534)

static char top[] = "/tmp/test-openpath-XXXXXX";

static void caps_get(struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        g_assert_cmpint(syscall(SYS_capget, &h, caps), ==, 0);
}

static void caps_set(const struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        g_assert_cmpint(syscall(SYS_capset, &h, caps), ==, 0);
}

/* OpenPath's op for path; returns its result, and its fd in *ret_fd (or
 * closes it). Asserts that the thread's credentials are as before. */
static int open_path(const char *path, int accmode, int *ret_fd) {
        struct __user_cap_data_struct before[_LINUX_CAPABILITY_U32S_3], after[_LINUX_CAPABILITY_U32S_3];
        WorkerOp op = WORKER_OP_INIT;
        gid_t groups_before[64], groups_after[64];
        int ngb, nga, r;

        caps_get(before);
        ngb = getgroups(64, groups_before);
        op.type = WORKER_OP_OPEN_PATH;
        op.accmode = accmode;
        op.path = g_strdup(path);
        worker_run_op(&op);
        caps_get(after);
        nga = getgroups(64, groups_after);
        g_assert_cmpmem(before, sizeof before, after, sizeof after);
        g_assert_cmpmem(groups_before, ngb * sizeof(gid_t), groups_after, nga * sizeof(gid_t));
        g_assert_cmpint(setfsuid((uid_t) -1), ==, getuid());
        g_assert_cmpint(setfsgid((gid_t) -1), ==, getgid());
        r = op.result;
        if (r == 0) {
                g_assert_cmpint(op.ret_fd, >=, 0);
                g_assert_cmpint(fcntl(op.ret_fd, F_GETFD), ==, FD_CLOEXEC);
                g_assert_cmpint(fcntl(op.ret_fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), ==, accmode);
        } else
                g_assert_cmpint(op.ret_fd, ==, -1);
        if (ret_fd)
                *ret_fd = op.ret_fd;
        else if (op.ret_fd >= 0)
                close(op.ret_fd);
        op.ret_fd = -1;
        worker_op_done(&op);
        return r;
}

static char *make_file(const char *dir, const char *name, uid_t uid, mode_t mode, const char *text) {
        char *p = g_build_filename(dir, name, NULL);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, text, strlen(text)), ==, (ssize_t) strlen(text));
        g_assert_cmpint(fchown(fd, uid, uid), ==, 0);
        g_assert_cmpint(fchmod(fd, mode), ==, 0);
        close(fd);
        return p;
}

static char *make_dir(const char *parent, const char *name, uid_t uid, mode_t mode) {
        char *p = g_build_filename(parent, name, NULL);
        g_assert_cmpint(mkdir(p, 0700), ==, 0);
        g_assert_cmpint(chown(p, uid, uid), ==, 0);
        g_assert_cmpint(chmod(p, mode), ==, 0);
        return p;
}

static bool need_root(void) {
        if (geteuid() != 0) {
                g_test_skip("needs root to make files of other uids and open as their owners");
                return false;
        }
        return true;
}

/* Another uid's 0600 file in its 0700 directory opens, read-write. */
static void test_other_uids_private_file(void) {
        g_autofree char *dir = NULL, *file = NULL;
        unsigned n0;
        char buf[16] = {};
        int fd;

        if (!need_root())
                return;
        dir = make_dir(top, "nobody", NOBODY, 0700);
        file = make_file(dir, "secret", NOBODY, 0600, "nobody's");
        n0 = count_open_fds();
        g_assert_cmpint(open_path(file, O_RDWR, &fd), ==, 0);
        g_assert_cmpint(pread(fd, buf, sizeof buf - 1, 0), ==, 8);
        g_assert_cmpstr(buf, ==, "nobody's");
        close(fd);
        /* A root file in nobody's directory: searched as nobody, opened as root. */
        g_autofree char *rootfile = make_file(dir, "roots", 0, 0600, "root's");
        g_assert_cmpint(open_path(rootfile, O_RDONLY, NULL), ==, 0);
        g_assert_cmpuint(count_open_fds(), ==, n0);
}

/* root:root 0600 opens; 0400 opens read-only and is refused read-write or
 * write-only (root with CAP_DAC_OVERRIDE would open it); 0000 is refused. */
static void test_owner_bits_decide(void) {
        g_autofree char *f600 = NULL, *f400 = NULL, *f000 = NULL, *n400 = NULL;
        unsigned n0;

        if (!need_root())
                return;
        f600 = make_file(top, "root600", 0, 0600, "x");
        f400 = make_file(top, "root400", 0, 0400, "x");
        f000 = make_file(top, "root000", 0, 0000, "x");
        n400 = make_file(top, "nobody400", NOBODY, 0400, "x");
        n0 = count_open_fds();
        g_assert_cmpint(open_path(f600, O_RDWR, NULL), ==, 0);
        g_assert_cmpint(open_path(f400, O_RDONLY, NULL), ==, 0);
        g_assert_cmpint(open_path(f400, O_RDWR, NULL), ==, -EACCES);
        g_assert_cmpint(open_path(f400, O_WRONLY, NULL), ==, -EACCES);
        g_assert_cmpint(open_path(f000, O_RDONLY, NULL), ==, -EACCES);
        g_assert_cmpint(open_path(n400, O_RDONLY, NULL), ==, 0);
        g_assert_cmpint(open_path(n400, O_RDWR, NULL), ==, -EACCES);
        g_assert_cmpuint(count_open_fds(), ==, n0);
}

/* A directory whose owner may not search it (0600) hides its files, even
 * from root's broker; a device node opens. */
static void test_directories_are_searched_as_their_owner(void) {
        g_autofree char *dir = NULL, *file = NULL;
        unsigned n0;

        if (!need_root())
                return;
        dir = make_dir(top, "nosearch", NOBODY, 0700);
        file = make_file(dir, "f", 0, 0644, "x");
        g_assert_cmpint(chmod(dir, 0600), ==, 0);
        n0 = count_open_fds();
        g_assert_cmpint(open_path(file, O_RDONLY, NULL), ==, -EACCES);
        g_assert_cmpint(open_path("/dev/null", O_RDWR, NULL), ==, 0);
        g_assert_cmpuint(count_open_fds(), ==, n0);
        g_assert_cmpint(chmod(dir, 0700), ==, 0);
}

static void test_symlinks_and_types(void) {
        g_autofree char *dir = NULL, *file = NULL, *link = NULL, *dirlink = NULL, *through = NULL;
        unsigned n0;

        if (!need_root())
                return;
        dir = make_dir(top, "links", 0, 0755);
        file = make_file(dir, "f", 0, 0644, "x");
        link = g_build_filename(dir, "link", NULL);
        g_assert_cmpint(symlink("f", link), ==, 0);
        dirlink = g_build_filename(top, "dirlink", NULL);
        g_assert_cmpint(symlink("links", dirlink), ==, 0);
        through = g_build_filename(dirlink, "f", NULL);
        n0 = count_open_fds();
        g_assert_cmpint(open_path(link, O_RDONLY, NULL), ==, -ELOOP);
        g_assert_cmpint(open_path(through, O_RDONLY, NULL), ==, -ELOOP);
        g_assert_cmpint(open_path(dir, O_RDONLY, NULL), ==, -EMEDIUMTYPE);
        g_assert_cmpint(open_path("/", O_RDONLY, NULL), ==, -EMEDIUMTYPE);
        g_assert_cmpint(open_path(file, O_RDONLY, NULL), ==, 0);
        g_assert_cmpuint(count_open_fds(), ==, n0);
}

/* Without CAP_SETUID the open is the thread's own (an unprivileged broker):
 * here root's CAP_DAC_OVERRIDE still applies. */
static void test_without_setuid_opens_as_itself(void) {
        struct __user_cap_data_struct saved[_LINUX_CAPABILITY_U32S_3], less[_LINUX_CAPABILITY_U32S_3];
        g_autofree char *f400 = NULL;

        if (!need_root())
                return;
        f400 = make_file(top, "plain400", 0, 0400, "x");
        caps_get(saved);
        memcpy(less, saved, sizeof less);
        less[CAP_TO_INDEX(CAP_SETUID)].effective &= ~CAP_TO_MASK(CAP_SETUID);
        caps_set(less);
        g_assert_cmpint(open_path(f400, O_RDWR, NULL), ==,
                        (saved[CAP_TO_INDEX(CAP_DAC_OVERRIDE)].effective & CAP_TO_MASK(CAP_DAC_OVERRIDE)) ? 0
                                                                                                         : -EACCES);
        caps_set(saved);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_assert_nonnull(mkdtemp(top));
        g_assert_cmpint(chmod(top, 0755), ==, 0);
        g_test_add_func("/openpath/other-uids-private-file", test_other_uids_private_file);
        g_test_add_func("/openpath/owner-bits-decide", test_owner_bits_decide);
        g_test_add_func("/openpath/directories-searched-as-owner", test_directories_are_searched_as_their_owner);
        g_test_add_func("/openpath/symlinks-and-types", test_symlinks_and_types);
        g_test_add_func("/openpath/without-setuid", test_without_setuid_opens_as_itself);
        r = g_test_run();
        {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", top);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", top);
        }
        return r;
}
