package io.mmdit4j.runtime;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas;
import org.bytedeco.pytorch.global.torch;

import static org.bytedeco.pytorch.global.torch.globalContext;

/**
 * Process-wide libtorch settings: native loading, thread counts (libtorch and OpenBLAS separately,
 * since {@code set_num_threads} does not reach OpenBLAS's fp32 GEMM), and the CPU attention backend.
 */
public final class Torch {
    private static volatile boolean initialised;
    private static volatile int threads;
    private static volatile Boolean flashEnabled;

    private Torch() {}

    /** Loads the natives and applies the default thread count (MMDIT_THREADS or all cores). Idempotent. */
    public static void init() {
        if (initialised) return;
        synchronized (Torch.class) {
            if (initialised) return;
            Loader.load(torch.class);
            String env = System.getenv("MMDIT_THREADS");
            int n = env != null && !env.isBlank() ? Integer.parseInt(env.trim()) : Runtime.getRuntime().availableProcessors();
            applyThreads(n);
            warnAboutSpinningThreads(n);
            initialised = true;
        }
    }

    /**
     * libtorch's OpenMP workers spin after each parallel region while OpenBLAS's own threads want the same
     * cores: on a 2-core machine a small-op-heavy forward ran 12x slower (92 ms vs 7.8 ms for the tiny model)
     * until {@code OMP_WAIT_POLICY=PASSIVE}; large GEMMs are unaffected. The variable is read when the
     * natives load, so it must be set in the environment ({@code ./mmdit} and the tests do).
     */
    private static void warnAboutSpinningThreads(int n) {
        String policy = System.getenv("OMP_WAIT_POLICY");
        if (n > 1 && (policy == null || !policy.equalsIgnoreCase("passive"))) {
            org.slf4j.LoggerFactory.getLogger(Torch.class).warn("OMP_WAIT_POLICY is not PASSIVE: libtorch's and OpenBLAS's threads will "
                    + "compete and small ops can run ~10x slower; export OMP_WAIT_POLICY=PASSIVE before starting the JVM");
        }
    }

    /** Sets intra-op threads for libtorch/OpenMP/oneDNN and for OpenBLAS. */
    /** More threads than any machine has cores only makes OpenMP and OpenBLAS allocate pools that oversubscribe the CPU. */
    public static final int MAX_THREADS = 4096;

    public static void setThreads(int n) {
        init();
        applyThreads(n);
    }

    private static void applyThreads(int n) {
        if (n < 1 || n > MAX_THREADS) throw new IllegalArgumentException("threads must be in 1.." + MAX_THREADS + ", got " + n);
        torch.set_num_threads(n);
        openblas.blas_set_num_threads(n);
        threads = n;
    }

    public static int threads() {
        init();
        return threads;
    }

    public static int blasThreads() {
        init();
        return openblas.blas_get_num_threads();
    }

    /** Whether attention in {@code compute} runs the math kernel, which materialises the score matrix (memory estimates). */
    public static boolean usesMathAttention(DType compute) {
        return compute != DType.F32 && compute != DType.F64;
    }

    /**
     * Chooses the CPU SDPA kernel for a compute dtype: the fused flash kernel is the fastest and leanest
     * for fp32, but 10-20x slower than the math path in bf16 on this CPU class. The switch is global in
     * libtorch; it is only flipped when the dtype class changes.
     */
    public static void selectAttentionBackend(DType compute) {
        boolean wantFlash = !usesMathAttention(compute);
        Boolean current = flashEnabled;
        if (current != null && current == wantFlash) return;
        synchronized (Torch.class) {
            globalContext().setSDPUseFlash(wantFlash);
            flashEnabled = wantFlash;
        }
    }

    /** A one-line summary of the native build and settings. */
    public static String describe() {
        init();
        return "libtorch 2.10.0 (JavaCPP presets 1.5.13), threads " + threads + " (OpenBLAS " + blasThreads() + ")"
                + ", cuda " + (torch.cuda_is_available() ? torch.cuda_device_count() + " device(s)" : "unavailable");
    }
}
