/*
 * bench_peak - the machine's peak single-precision FMA rate, per core and
 * for several threads: the ceiling an exact batch (a matrix multiply) is
 * measured against (docs/benchmarks.md, "Exact batches").
 *
 *   bench_peak [THREADS [SECONDS]]     default: 1 and 2 threads, 2 s each
 *
 * Each thread runs independent chains of vfmadd in registers, no memory
 * operands, for AVX-512 (24 chains of zmm, 16 floats) and AVX2 (12 chains of
 * ymm, 8 floats) where the CPU has them: enough to hide the FMA latency (4
 * cycles on Zen 4/5 and Skylake-X) on 2 or 3 pipes. One FMA
 * counts as 2 FLOP. Rates are given against the threads' CPU time (what
 * perf stat's task-clock counts; other work on a shared machine steals
 * wall time, not CPU time) and against wall time; "sum" is the sum over the
 * threads of FLOP / each thread's CPU time, the rate the threads would have
 * together if none was descheduled.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The chains, in assembly so that no compiler keeps them in memory:
 * acc = acc * a + b with a = 0.999999 converges, so no value becomes
 * subnormal or infinite (which could slow the pipes down). AVX-512: 24
 * chains in zmm0-23; AVX2 has 16 registers: 12 chains in ymm0-11. */
#define CHAINS(reg, a_reg, b_reg, all, rest)                                                 \
    "vbroadcastss %[a], %%" a_reg "\n\t"                                                     \
    "vbroadcastss %[b], %%" b_reg "\n\t"                                                     \
    ".irp r," all "\n\tvmovaps %%" b_reg ", %%" reg "\\r\n\t.endr\n\t"                      \
    "1:\n\t"                                                                                 \
    ".irp r," all "\n\tvfmadd231ps %%" b_reg ", %%" a_reg ", %%" reg "\\r\n\t.endr\n\t"     \
    "dec %[n]\n\t"                                                                           \
    "jnz 1b\n\t"                                                                             \
    ".irp r," rest "\n\tvaddps %%" reg "\\r, %%" reg "0, %%" reg "0\n\t.endr\n\t"           \
    "vmovups %%" reg "0, %[out]\n\t"

#define ZMM1_23 "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
#define XMM0_15 "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
                "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

__attribute__((target("avx512f"))) static float chains512(uint64_t iters)
{
    float a = 0.999999f, b = 1e-7f, out[16];
    __asm__ volatile(CHAINS("zmm", "zmm24", "zmm25", "0," ZMM1_23, ZMM1_23)
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [a] "m"(a), [b] "m"(b)
                     : "cc", "memory", XMM0_15, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
                       "xmm21", "xmm22", "xmm23", "xmm24", "xmm25");
    return out[0];
}

__attribute__((target("avx2,fma"))) static float chains256(uint64_t iters)
{
    float a = 0.999999f, b = 1e-7f, out[8];
    __asm__ volatile(CHAINS("ymm", "ymm12", "ymm13", "0,1,2,3,4,5,6,7,8,9,10,11", "1,2,3,4,5,6,7,8,9,10,11")
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [a] "m"(a), [b] "m"(b)
                     : "cc", "memory", XMM0_15);
    return out[0];
}

typedef struct job {
    int isa; /* 512 or 256 */
    uint64_t iters;
    double cpu;  /* this thread's CPU seconds */
    float sink;
} job;

static void *run(void *p)
{
    job *j = p;
    double c0 = now(CLOCK_THREAD_CPUTIME_ID);
    j->sink = j->isa == 512 ? chains512(j->iters) : chains256(j->iters);
    j->cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

/* FLOP per iteration of the loop: 24 zmm or 12 ymm FMAs. */
static double flop_per_iter(int isa) { return isa == 512 ? 2.0 * 24 * 16 : 2.0 * 12 * 8; }

static void measure(int isa, int threads, double seconds)
{
    /* Calibrate on one thread: about 0.2 s of work. */
    job cal = {isa, 1u << 20, 0, 0};
    run(&cal);
    uint64_t iters = (uint64_t)((double)cal.iters * seconds / (cal.cpu > 0 ? cal.cpu : 1e-3));
    job jobs[64];
    pthread_t tid[64];
    double w0 = now(CLOCK_MONOTONIC);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){isa, iters, 0, 0};
        pthread_create(&tid[t], NULL, run, &jobs[t]);
    }
    double sum = 0, cpu = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += flop_per_iter(isa) * (double)iters / jobs[t].cpu / 1e9;
        cpu += jobs[t].cpu;
    }
    double wall = now(CLOCK_MONOTONIC) - w0;
    double total = flop_per_iter(isa) * (double)iters * threads;
    printf("%-8s threads %d: %7.1f GFLOP/s (sum of per-thread CPU-time rates), %7.1f GFLOP/s "
           "wall, %.1f per thread; CPU %.2f s, wall %.2f s\n",
           isa == 512 ? "avx512" : "avx2", threads, sum, total / wall / 1e9, sum / threads, cpu,
           wall);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    if (threads < 0 || threads > 64 || seconds <= 0) {
        fprintf(stderr, "usage: bench_peak [THREADS (1-64) [SECONDS]]\n");
        return 2;
    }
    __builtin_cpu_init();
    int isas[2] = {__builtin_cpu_supports("avx512f") ? 512 : 0,
                   __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 256 : 0};
    for (int i = 0; i < 2; i++) {
        if (!isas[i]) continue;
        if (threads) measure(isas[i], threads, seconds);
        else {
            measure(isas[i], 1, seconds);
            measure(isas[i], 2, seconds);
        }
    }
    return 0;
}
