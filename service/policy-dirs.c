/* policy-dirs.c: the daemon reading its policy directories (policy-dirs.h). */
#include "policy-dirs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

int policy_dirs_load(char *const *dirs, bool bare, Policy **ret) {
        char **problems = NULL;
        int r = policy_load(dirs, ret, &problems);
        if (r == -EINVAL) {
                for (char **p = problems; p && *p; p++)
                        if (bare)
                                fprintf(stderr, "%s\n", *p);
                        else
                                log_error("%s", *p);
                policy_problems_free(problems);
        } else if (r < 0)
                log_error("could not read the policy: %s", strerror(-r));
        return r;
}

void policy_dirs_warn_missing(char *const *dirs, bool given) {
        for (size_t i = 0; given && dirs[i]; i++)
                if (access(dirs[i], F_OK) < 0)
                        log_warning("policy directory %s does not exist: no rules from it", dirs[i]);
}

/* How many of the files read came from dir. */
static size_t files_from(const Policy *p, const char *dir) {
        size_t n = 0, len = strlen(dir);

        for (char **f = p->files; f && *f; f++)
                if (strncmp(*f, dir, len) == 0 && (*f)[len] == '/' && !strchr(*f + len + 1, '/'))
                        n++;
        return n;
}

/* Which of dirs do not exist (missing[i]); a failure is said on stderr. */
static int find_missing(char *const *dirs, bool given, bool missing[]) {
        for (size_t i = 0; dirs[i]; i++) {
                struct stat st;

                missing[i] = stat(dirs[i], &st) < 0;
                if (missing[i] && errno != ENOENT) {
                        fprintf(stderr, "fdbroker: cannot read policy directory %s: %s\n", dirs[i], strerror(errno));
                        return -errno;
                }
                if (!missing[i] && !S_ISDIR(st.st_mode)) {
                        fprintf(stderr, "fdbroker: --policy-dir=%s is not a directory.\n", dirs[i]);
                        return -ENOTDIR;
                }
                if (missing[i] && given) {
                        fprintf(stderr, "fdbroker: FAIL: --policy-dir=%s does not exist; check the path.\n",
                                dirs[i]);
                        return -ENOENT;
                }
        }
        return 0;
}

int policy_dirs_check(char *const *dirs, bool given) {
        _cleanup_(policy_freep) Policy *p = NULL;
        bool missing[POLICY_DIRS_MAX];
        size_t n_files = 0;
        int r;

        r = find_missing(dirs, given, missing);
        if (r < 0)
                return r;
        r = policy_dirs_load(dirs, true, &p);
        if (r < 0)
                return r;
        for (char **f = p->files; f && *f; f++)
                n_files++;

        printf("Policy directories, highest priority first:\n");
        for (size_t i = 0; dirs[i]; i++)
                if (missing[i])
                        printf("  %s: does not exist (nothing to read there)\n", dirs[i]);
                else
                        printf("  %s: %zu file(s) read\n", dirs[i], files_from(p, dirs[i]));
        if (n_files == 0)
                printf("%zu rule(s): no *.conf files in these directories: OK\n", p->n_rules);
        else
                printf("%zu rule(s) in %zu file(s): OK\n", p->n_rules, n_files);
        for (char **f = p->files; f && *f; f++)
                printf("  %s\n", *f);
        return 0;
}
