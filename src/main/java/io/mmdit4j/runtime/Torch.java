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
     * libtorch; it is only flipped when the dtype class changes. Only for CPU attention: {@link #attention}
     * is what the models call, and it keeps this setting away from CUDA.
     */
    public static void selectAttentionBackend(DType compute) {
        apply(usesMathAttention(compute) ? Backends.CPU_MATH : Backends.CPU_FLASH);
    }

    /**
     * The SDPA settings one device class wants. libtorch keeps them in one process-wide {@code Context}, which both the
     * CPU and the CUDA kernel choice read, so the CPU's "flash off" for bf16 would otherwise also switch FlashAttention
     * off on the GPU. CUDA wants: cuDNN attention first, then FlashAttention-2, then the memory-efficient kernel, then
     * math (published H100 figures at FLUX's shape: default SDPA about 329 TFLOP/s, cuDNN about 631); flash back on.
     */
    enum Backends { CPU_FLASH, CPU_MATH, CUDA }

    private static volatile Backends backends;
    private static final Object ATTENTION_LOCK = new Object();
    /** Device classes that have run attention in this process; two or more: settings and calls are serialised. */
    private static final java.util.Set<Backends> seen = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** CUDA's order (SDPBackend values): cuDNN, flash, memory-efficient, math. */
    private static final long[] CUDA_PRIORITY = {torch.SDPBackend.cudnn_attention.value, torch.SDPBackend.flash_attention.value,
            torch.SDPBackend.efficient_attention.value, torch.SDPBackend.math.value};

    static void apply(Backends want) { // package-private for tests
        if (backends == want) return;
        synchronized (Torch.class) {
            if (backends == want) return;
            switch (want) {
                case CPU_FLASH -> globalContext().setSDPUseFlash(true);
                case CPU_MATH -> globalContext().setSDPUseFlash(false);
                case CUDA -> {
                    globalContext().setSDPUseFlash(true);
                    globalContext().setSDPUseCuDNN(true);
                    globalContext().setSDPUseMemEfficient(true);
                    try (org.bytedeco.pytorch.LongVector order = new org.bytedeco.pytorch.LongVector(CUDA_PRIORITY)) {
                        globalContext().setSDPPriorityOrder(order);
                    }
                }
            }
            flashEnabled = want != Backends.CPU_MATH;
            backends = want;
        }
    }

    /** The attention settings in force (for reports): the last device class configured, or "default". */
    public static String attentionBackend() {
        Backends b = backends;
        return b == null ? "default" : switch (b) {
            case CPU_FLASH -> "cpu-flash";
            case CPU_MATH -> "cpu-math";
            case CUDA -> "cuda: cudnn > flash > mem-efficient > math";
        };
    }

    /**
     * Runs one SDPA call ({@code sdpa}) under the settings of {@code q}'s device and dtype. With one device class in the
     * process (the usual case) the settings change at most once and calls run concurrently; once CPU and CUDA attention
     * have both run, each call sets its device's settings and runs while holding a lock, so neither sees the other's
     * (a CUDA call only launches kernels, so the lock is held briefly on that side). Meta and other devices run as they are.
     */
    public static <T> T attention(org.bytedeco.pytorch.Tensor q, java.util.function.Supplier<T> sdpa) {
        Backends want = q.is_cpu() ? (usesMathAttention(DType.of(q.scalar_type())) ? Backends.CPU_MATH : Backends.CPU_FLASH)
                : q.is_cuda() ? Backends.CUDA : null;
        if (want == null) return sdpa.get();
        seen.add(want == Backends.CPU_MATH ? Backends.CPU_FLASH : want); // the CPU's two states are one class
        if (seen.size() < 2) {
            apply(want);
            return sdpa.get();
        }
        synchronized (ATTENTION_LOCK) {
            apply(want);
            return sdpa.get();
        }
    }

    /**
     * TF32 for fp32 matmuls and convolutions on CUDA (cuBLAS and cuDNN): about 8x the fp32 throughput of an H100 at a
     * 10-bit mantissa. Off by default (PyTorch's default for matmuls); {@code --tf32}. No effect on the CPU.
     */
    public static void setTf32(boolean on) {
        init();
        globalContext().setAllowTF32CuBLAS(on);
        globalContext().setAllowTF32CuDNN(on);
    }

    public static boolean tf32() {
        init();
        return globalContext().allowTF32CuBLAS();
    }

    /** libtorch's CUDA sync-debug modes ({@code c10::cuda::SyncDebugMode}). */
    public static final int SYNC_DEBUG_DISABLED = 0, SYNC_DEBUG_WARN = 1, SYNC_DEBUG_ERROR = 2;

    /**
     * Sets libtorch's CUDA sync-debug mode ({@code torch.cuda.set_sync_debug_mode}): with {@link #SYNC_DEBUG_ERROR} any
     * operation that synchronises the host with the GPU throws. Through reflection, because the binding lives in
     * {@code torch_cuda}, which needs the CUDA natives ({@code -Pcuda}); on a build or host without them it fails with a
     * clear message. Never run on a GPU here.
     */
    public static void setSyncDebugMode(int mode) {
        try {
            Class<?> cuda = Class.forName("org.bytedeco.pytorch.global.torch_cuda");
            Object state = cuda.getMethod("warning_state").invoke(null);
            state.getClass().getMethod("set_sync_debug_mode", int.class).invoke(state, mode);
        } catch (ReflectiveOperationException | LinkageError e) {
            Throwable cause = e instanceof java.lang.reflect.InvocationTargetException ite ? ite.getCause() : e;
            throw new IllegalStateException("CUDA sync-debug mode is unavailable in this process (needs the GPU natives, mvn -Pcuda, "
                    + "and a CUDA host): " + cause, cause);
        }
    }

    /** A one-line summary of the native build and settings. */
    public static String describe() {
        init();
        return "libtorch 2.10.0 (JavaCPP presets 1.5.13), threads " + threads + " (OpenBLAS " + blasThreads() + ")"
                + ", cuda " + (torch.cuda_is_available() ? torch.cuda_device_count() + " device(s)" : "unavailable");
    }
}
