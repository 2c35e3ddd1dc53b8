/* loadgen: the benchmark load generator for ws4redis and its peers (see options.c for the modes).
 * The coordinator (this process) forks the workers, which share nothing but a block of shared
 * memory: their live counters, their results and the phase the coordinator sets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator.h"
#include "options.h"
#include "report.h"

static int worker_count(const struct options *opt) {
    if (opt->workers > 0)
        return opt->workers;
    return (opt->connections + opt->per_worker - 1) / opt->per_worker;
}

static double own_cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_stime.tv_sec +
           ((double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_usec) / 1e6;
}

static void add_up(struct run *run) {
    struct worker_result *t = &run->total;
    for (int i = 0; i < run->workers; i++) {
        const struct worker_result *r = &run->shared->results[i];
        t->opened += r->opened;
        t->failed += r->failed;
        for (int kind = 0; kind < FAIL_KINDS; kind++)
            t->failures[kind] += r->failures[kind];
        if (!t->first_refusal[0])
            memcpy(t->first_refusal, r->first_refusal, sizeof t->first_refusal);
        t->closed_after_open += r->closed_after_open;
        t->deliveries += r->deliveries;
        t->lost += r->lost;
        t->duplicated += r->duplicated;
        t->reordered += r->reordered;
        t->cpu_s += r->cpu_s;
        histogram_merge(&t->connect_us, &r->connect_us);
        histogram_merge(&t->latency_us, &r->latency_us);
    }
    t->cpu_s += own_cpu_seconds();
}

static pid_t *fork_workers(const struct options *opt, struct shared *shared, int workers) {
    pid_t *pids = calloc((size_t)workers, sizeof *pids);
    for (int i = 0; pids && i < workers; i++) {
        fflush(NULL);
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(worker_run(i, workers, opt, shared));
        if (pids[i] < 0) {
            perror("loadgen: fork");
            exit(1);
        }
    }
    return pids;
}

int main(int argc, char **argv) {
    static struct options opt;
    if (options_parse(&opt, argc, argv) != 0)
        return 2;
    struct run run = {.opt = &opt, .workers = worker_count(&opt)};
    size_t shared_size = sizeof(struct shared) + (size_t)run.workers * sizeof(struct worker_result);
    run.shared = mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (run.shared == MAP_FAILED) {
        perror("loadgen: mmap");
        return 1;
    }
    pid_t *pids = fork_workers(&opt, run.shared, run.workers);
    opt.mode->coordinate(&run);
    coordinator_set_phase(&run, PHASE_STOP);
    int worker_failures = 0;
    for (int i = 0; i < run.workers; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            worker_failures++;
    }
    if (worker_failures && !run.error)
        run.error = "a worker process failed";
    add_up(&run);
    struct json json = {.length = 0};
    json_open(&json, NULL);
    report_common(&run, &json);
    opt.mode->report(&run, &json);
    json_close(&json);
    printf("%s\n", json.text);
    return run.error ? 1 : 0;
}
