package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * A fused GGUF Q8_0 dequantizer for CPU tensors: one pass from the mapped blocks to fp32 or bf16, with the Java Vector API
 * ({@link Q8Kernel}), split over libtorch's thread count.
 *
 * <p>Why this exists beside the tensor-op dequantizers ({@code GgufTensor.decode}, the project's rule for bulk
 * dequantization): a quantized Linear dequantizes every weight on every forward, and the op-by-op Q8_0 path makes three
 * memory passes (int8 to fp32, times the block scale, rounding to bf16) that no libtorch CPU op fuses (mixed-dtype binary
 * ops convert their inputs first; the per-channel quantized {@code dequantize} wants contiguous int8 and one scale per
 * channel). That made a Q8_0 forward cost 1.52x the bf16 forward (issue 16, {@code benchmarks/README.md}); this kernel
 * is several times faster than the three passes for the same values.
 *
 * <p>The values are those of the tensor-op path bit for bit: {@code d * q} is one fp32 multiply of the exact fp16 scale
 * and the exact int8, written as fp32 or rounded once to nearest-even bf16 as ATen rounds ({@code (u + 0x7FFF + ((u >> 16) & 1)) >> 16}, a NaN to
 * {@link #BF16_NAN}); {@code Q8FastDequantTest} compares the two on random and edge-case blocks (every fp32 bit equal;
 * every bf16 bit equal but a NaN's, which the tensor ops themselves write two ways). It applies only where it
 * can: the {@code jdk.incubator.vector} module in the boot layer ({@code ./mmdit} and the tests add it; library users
 * without it get the tensor ops), 256-bit or wider vectors, contiguous uint8 blocks {@code [n, 34]} on the CPU (CUDA and
 * meta keep the tensor ops), whole blocks, and bf16 or fp32 output; {@link #decode} answers null otherwise. Disabled
 * with {@code -Dmmdit.quant.fastQ8=false}.
 */
public final class Q8Fast {
    private Q8Fast() {}

    /**
     * The bf16 a NaN product becomes: what ATen's vectorized fp32-to-bf16 conversion writes (all ones), which converts
     * every element of a whole-block range but the scalar tail of each thread's share (where {@code c10::BFloat16} writes
     * {@code 0x7FC0}); the tensor ops' NaN bits therefore depend on thread boundaries, every other value does not.
     */
    static final int BF16_NAN = 0xFFFF;
    private static final int BLOCK_BYTES = 34;
    /** Fewer blocks than this per thread are not worth a hand-off (64K elements). */
    private static final long MIN_BLOCKS_PER_TASK = 2048;
    /** At most this many blocks per buffer: 128 bytes of fp32 output each must stay under 2 GB. */
    private static final long MAX_BLOCKS_PER_TASK = 1L << 23;

    /** Whether the Vector API is there and wide enough (false for library users whose JVM lacks the module). */
    public static final boolean AVAILABLE = probe();

    private static volatile boolean enabled = !"false".equalsIgnoreCase(System.getProperty("mmdit.quant.fastQ8"));

    /** How many ranges the fast path dequantized (tests: proof that it was taken). */
    static final AtomicLong TAKEN = new AtomicLong();

    private static volatile ExecutorService pool;
    private static int poolThreads;

    private static boolean probe() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) return false;
        try {
            return Q8Kernel.usable();
        } catch (Throwable e) { // LinkageError and the like: no fast path, the tensor ops work
            return false;
        }
    }

    /** Turns the fast path on or off (tests, and comparisons); it is on by default where {@link #AVAILABLE}. */
    static void setEnabled(boolean on) {
        enabled = on;
    }

    /** Whether {@link #decode} may take the fast path at all. */
    public static boolean active() {
        return AVAILABLE && enabled;
    }

    /**
     * Blocks {@code [b0, b0 + n)} of {@code blocks} ({@code [N, 34]} uint8 Q8_0) dequantized into {@code dtype}: a flat
     * tensor {@code [32 n]} owned by the caller, or null when the fast path does not apply (the caller then uses the
     * tensor ops).
     */
    public static Tensor decode(Tensor blocks, long b0, long n, ScalarType dtype) {
        if (!active()) return null;
        boolean bf16 = Dequant.same(dtype, ScalarType.BFloat16);
        if (!bf16 && !Dequant.same(dtype, ScalarType.Float)) return null;
        int outBlockBytes = bf16 ? 64 : 128;
        try (PointerScope scope = new PointerScope()) {
            if (n <= 0 || b0 < 0 || !blocks.device().is_cpu() || !Dequant.same(blocks.scalar_type(), ScalarType.Byte) || blocks.dim() != 2
                    || blocks.size(1) != BLOCK_BYTES || b0 + n > blocks.size(0) || blocks.stride(1) != 1 || blocks.stride(0) != BLOCK_BYTES) {
                return null;
            }
            Tensor out = empty(new long[] {n * 32}, new TensorOptions(dtype), new MemoryFormatOptional());
            BytePointer src = new BytePointer(blocks.data_ptr()), dst = new BytePointer(out.data_ptr());
            int threads = Math.max(1, Torch.threads());
            long tasks = Math.max(Math.min(threads, n / MIN_BLOCKS_PER_TASK), (n + MAX_BLOCKS_PER_TASK - 1) / MAX_BLOCKS_PER_TASK);
            tasks = Math.max(1, tasks);
            long per = (n + tasks - 1) / tasks;
            List<Runnable> parts = new ArrayList<>();
            for (long start = 0; start < n; start += per) {
                int count = (int) Math.min(per, n - start);
                ByteBuffer s = buffer(src, (b0 + start) * BLOCK_BYTES, (long) count * BLOCK_BYTES);
                ByteBuffer d = buffer(dst, start * outBlockBytes, (long) count * outBlockBytes);
                parts.add(() -> Q8Kernel.decode(s, d, count, bf16));
            }
            run(parts, threads);
            TAKEN.incrementAndGet();
            return Tensors.keep(out);
        }
    }

    /** A little-endian buffer over bytes {@code [offset, offset + length)} of the native memory at {@code base}. */
    private static ByteBuffer buffer(BytePointer base, long offset, long length) {
        BytePointer p = new BytePointer(base);
        p.capacity(offset + length);
        p.limit(offset + length);
        p.position(offset);
        return p.asByteBuffer().slice().order(ByteOrder.LITTLE_ENDIAN); // slice: index 0 at offset (the buffer starts at base)
    }

    /** Runs {@code parts}: all but the first on the pool, the first on this thread; returns when all are done. */
    private static void run(List<Runnable> parts, int threads) {
        if (parts.size() == 1) {
            parts.get(0).run();
            return;
        }
        ExecutorService p = pool(threads);
        List<Future<?>> futures = new ArrayList<>();
        List<Runnable> inline = new ArrayList<>(List.of(parts.get(0)));
        for (int i = 1; i < parts.size(); i++) {
            try {
                futures.add(p.submit(parts.get(i)));
            } catch (java.util.concurrent.RejectedExecutionException e) { // the pool was just replaced (thread count changed)
                inline.add(parts.get(i));
            }
        }
        Throwable failure = null;
        try {
            inline.forEach(Runnable::run);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        boolean interrupted = false;
        for (Future<?> f : futures) { // every part must finish before the output can be handed out or freed
            while (true) {
                try {
                    f.get();
                    break;
                } catch (ExecutionException e) {
                    if (failure == null) failure = e.getCause();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        if (failure instanceof RuntimeException) throw (RuntimeException) failure;
        if (failure instanceof Error) throw (Error) failure;
        if (failure != null) throw new IllegalStateException("Q8_0 dequantization failed", failure);
    }

    /** A pool of {@code threads - 1} daemon threads (the caller is the last one), rebuilt when the thread count changes. */
    private static synchronized ExecutorService pool(int threads) {
        if (pool == null || poolThreads != threads) {
            if (pool != null) pool.shutdown();
            AtomicLong id = new AtomicLong();
            pool = Executors.newFixedThreadPool(Math.max(1, threads - 1), r -> {
                Thread t = new Thread(r, "mmdit-q8-dequant-" + id.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
            poolThreads = threads;
        }
        return pool;
    }
}
