/* gpukeeperd: entry point. Parses arguments, loads the configuration and
 * runs the daemon in the foreground (systemd supervises it). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/env-backup.h"

#define DEFAULT_CONFIG "/etc/gpukeeper/gpukeeper.yaml"

/* One descriptor per connection and per GPU process (pidfds): take the hard
 * limit, not the soft default of 1024 that SERVER_MAX_CONNECTIONS alone
 * would reach. */
static void raise_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_warning_errno(errno, "Cannot raise the file descriptor limit");
        }
}

/* Log every error of a configuration file, one a line (config_load joins
 * them with newlines). */
static void log_config_errors(const char *what, const char *error, int r)
{
        size_t n = 1;

        if (!error) {
                log_error("%s: %s", what, strerror(-r));
                return;
        }
        for (const char *p = error; (p = strchr(p, '\n')); p++)
                n++;
        if (n > 1)
                log_error("%s (%zu errors):", what, n);
        for (const char *p = error; p;) {
                const char *nl = strchr(p, '\n');

                if (n > 1)
                        log_error("  %.*s", (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
                else
                        log_error("%s: %s", what, p);
                p = nl ? nl + 1 : NULL;
        }
}

static void help(void)
{
        printf("Usage: gpukeeperd [--config FILE] [--check-config]\n"
               "\n"
               "The gpukeeper daemon: leases the GPUs of this machine, watches who uses them\n"
               "and answers the gpukeeper command on its Unix socket. Runs in the foreground.\n"
               "\n"
               "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ";\n"
               "                     when that file does not exist the built-in defaults apply)\n"
               "      --check-config check the configuration file, report every error in it\n"
               "                     and exit: 0 when it is valid, 78 when not; starts nothing\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the configuration.\n"
               "See gpukeeperd(8) and gpukeeper.yaml(5).\n");
}

/* `gpukeeperd --env-backup-job DIR KEEP` and `--env-trash-job CUTOFF`: the
 * processes the daemon starts for its scheduled environment jobs, by
 * exec'ing itself (daemon/env-backup.h); not for people, so not in --help.
 * Returns -1 when argv is not one of them. */
static int job_main(int argc, char **argv)
{
        uint64_t v;

        if (argc == 4 && strcmp(argv[1], "--env-backup-job") == 0) {
                if (parse_uint64(argv[3], &v) < 0 || v == 0 || v > UINT32_MAX)
                        return 64;
                return env_backup_job_main(argv[2], (unsigned)v);
        }
        if (argc == 3 && strcmp(argv[1], "--env-trash-job") == 0) {
                if (parse_uint64(argv[2], &v) < 0)
                        return 64;
                return env_trash_job_main(JOB_FD, v);
        }
        return -1;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, 'C'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {},
        };
        const char *arg_config = NULL;
        bool arg_check = false;
        _cleanup_free_ char *error = NULL;
        char *config_path = NULL;
        Config *config = NULL;
        Daemon *d = NULL;
        int c, r;

        r = job_main(argc, argv);
        if (r >= 0)
                return r;
        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 'C':
                        arg_check = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case 'V':
                        printf("gpukeeperd " GK_VERSION "\n");
                        return EXIT_SUCCESS;
                default:
                        fprintf(stderr, "Try 'gpukeeperd --help'.\n");
                        return 64;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "gpukeeperd: unexpected argument '%s'; try 'gpukeeperd --help'.\n",
                        argv[optind]);
                return 64;
        }

        if (arg_check) {
                const char *path = arg_config ?: DEFAULT_CONFIG;

                r = config_load(path, &config, &error);
                if (r < 0) {
                        log_config_errors("Invalid configuration", error, r);
                        return 78; /* EX_CONFIG */
                }
                config_free(config);
                printf("%s: valid\n", path);
                return EXIT_SUCCESS;
        }

        if (!arg_config && access(DEFAULT_CONFIG, F_OK) < 0 && errno == ENOENT) {
                r = config_new_defaults(&config);
                if (r < 0)
                        return log_error_errno(r, "Cannot allocate the configuration"), 1;
                log_info("No %s: using the built-in defaults.", DEFAULT_CONFIG);
        } else {
                const char *path = arg_config ?: DEFAULT_CONFIG;

                r = config_load(path, &config, &error);
                if (r < 0) {
                        log_config_errors("Invalid configuration, not starting", error, r);
                        return 78; /* EX_CONFIG */
                }
                config_path = strdup(path);
                if (!config_path) {
                        config_free(config);
                        return 1;
                }
        }
        log_set_max_level(config->log_level);
        raise_fd_limit();

        r = daemon_new(config_path, config, &d);
        if (r < 0)
                return 1;
        r = daemon_run(d);
        daemon_free(d);
        return r;
}
