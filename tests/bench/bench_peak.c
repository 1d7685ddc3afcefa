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
__attribute__((target("avx512f"))) static float chains512(uint64_t iters)
{
    float a = 0.999999f, b = 1e-7f, out[16];
    __asm__ volatile(
        "vbroadcastss %[a], %%zmm24\n\t"
        "vbroadcastss %[b], %%zmm25\n\t"
        "vmovaps %%zmm25, %%zmm0\n\t"
        "vmovaps %%zmm25, %%zmm1\n\t"
        "vmovaps %%zmm25, %%zmm2\n\t"
        "vmovaps %%zmm25, %%zmm3\n\t"
        "vmovaps %%zmm25, %%zmm4\n\t"
        "vmovaps %%zmm25, %%zmm5\n\t"
        "vmovaps %%zmm25, %%zmm6\n\t"
        "vmovaps %%zmm25, %%zmm7\n\t"
        "vmovaps %%zmm25, %%zmm8\n\t"
        "vmovaps %%zmm25, %%zmm9\n\t"
        "vmovaps %%zmm25, %%zmm10\n\t"
        "vmovaps %%zmm25, %%zmm11\n\t"
        "vmovaps %%zmm25, %%zmm12\n\t"
        "vmovaps %%zmm25, %%zmm13\n\t"
        "vmovaps %%zmm25, %%zmm14\n\t"
        "vmovaps %%zmm25, %%zmm15\n\t"
        "vmovaps %%zmm25, %%zmm16\n\t"
        "vmovaps %%zmm25, %%zmm17\n\t"
        "vmovaps %%zmm25, %%zmm18\n\t"
        "vmovaps %%zmm25, %%zmm19\n\t"
        "vmovaps %%zmm25, %%zmm20\n\t"
        "vmovaps %%zmm25, %%zmm21\n\t"
        "vmovaps %%zmm25, %%zmm22\n\t"
        "vmovaps %%zmm25, %%zmm23\n\t"
        "1:\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm0\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm1\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm2\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm3\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm4\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm5\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm6\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm7\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm8\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm9\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm10\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm11\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm12\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm13\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm14\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm15\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm16\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm17\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm18\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm19\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm20\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm21\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm22\n\t"
        "vfmadd231ps %%zmm25, %%zmm24, %%zmm23\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "vaddps %%zmm1, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm2, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm3, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm4, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm5, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm6, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm7, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm8, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm9, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm10, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm11, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm12, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm13, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm14, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm15, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm16, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm17, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm18, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm19, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm20, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm21, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm22, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm23, %%zmm0, %%zmm0\n\t"
        "vmovups %%zmm0, %[out]\n\t"
        : [n] "+r"(iters), [out] "=m"(out)
        : [a] "m"(a), [b] "m"(b)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25");
    return out[0];
}

__attribute__((target("avx2,fma"))) static float chains256(uint64_t iters)
{
    float a = 0.999999f, b = 1e-7f, out[8];
    __asm__ volatile(
        "vbroadcastss %[a], %%ymm12\n\t"
        "vbroadcastss %[b], %%ymm13\n\t"
        "vmovaps %%ymm13, %%ymm0\n\t"
        "vmovaps %%ymm13, %%ymm1\n\t"
        "vmovaps %%ymm13, %%ymm2\n\t"
        "vmovaps %%ymm13, %%ymm3\n\t"
        "vmovaps %%ymm13, %%ymm4\n\t"
        "vmovaps %%ymm13, %%ymm5\n\t"
        "vmovaps %%ymm13, %%ymm6\n\t"
        "vmovaps %%ymm13, %%ymm7\n\t"
        "vmovaps %%ymm13, %%ymm8\n\t"
        "vmovaps %%ymm13, %%ymm9\n\t"
        "vmovaps %%ymm13, %%ymm10\n\t"
        "vmovaps %%ymm13, %%ymm11\n\t"
        "1:\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm1\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm3\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm5\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm7\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm9\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm12, %%ymm11\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "vaddps %%ymm1, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm2, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm3, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm4, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm5, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm6, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm7, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm8, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm9, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm10, %%ymm0, %%ymm0\n\t"
        "vaddps %%ymm11, %%ymm0, %%ymm0\n\t"
        "vmovups %%ymm0, %[out]\n\t"
        : [n] "+r"(iters), [out] "=m"(out)
        : [a] "m"(a), [b] "m"(b)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
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
