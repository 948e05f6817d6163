package io.mmdit4j.io;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * Moving loaded weights to an accelerator in batches: each weight is converted to the compute dtype on the host (a view
 * of the mapped file when the dtypes match), copied into a pinned staging buffer, and a full buffer goes to the device as
 * asynchronous copies on a side stream while the host fills the other buffer (two buffers of {@link #stagingBytes}). A
 * weight larger than a buffer is copied alone, synchronously. Without it every weight is one blocking copy from pageable
 * (mapped) memory, which the driver stages through a small bounce buffer of its own.
 *
 * <p>A session spans one model load ({@link #during}, opened by {@code nn.Modules.loadingScoped}; nested loads join the
 * outer session) and ends with every copy complete, so the weights are ready for any stream. What goes where is decided
 * by the same batching on every device: on the CPU nothing moves (weights stay views, no session work); on {@code meta}
 * the batches are planned and recorded ({@link #lastReport}) but nothing is staged, which is how the path is tested; on
 * CUDA the copies run (never run here: no GPU).
 */
public final class WeightUpload {
    /** Bytes of one pinned staging buffer (two are used); {@code -Dmmdit.uploadStagingBytes} changes it. */
    public static final long DEFAULT_STAGING_BYTES = 64L << 20;

    /** Offsets of weights in a staging buffer are multiples of this (a byte buffer viewed as bf16 / fp32 needs aligned offsets). */
    private static final long ALIGN = 64;
    private static final ThreadLocal<WeightUpload> CURRENT = new ThreadLocal<>();
    private static final ThreadLocal<Report> LAST = new ThreadLocal<>();
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(WeightUpload.class);

    /** What one session moved: per batch, the keys in copy order; a batch of one weight larger than the staging buffer. */
    public record Report(DeviceSpec device, long stagingBytes, List<List<String>> batches, List<Long> batchBytes, long nanos) {
        public int tensors() {
            return batches.stream().mapToInt(List::size).sum();
        }

        public long bytes() {
            return batchBytes.stream().mapToLong(Long::longValue).sum();
        }
    }

    private final long stagingBytes;
    private final long t0 = System.nanoTime();
    private DeviceSpec device;                 // the one device this session uploads to (set by the first weight)
    private CudaCopies cuda;                   // CUDA only
    private final List<List<String>> batches = new ArrayList<>();
    private final List<Long> batchBytes = new ArrayList<>();
    private List<String> batch = new ArrayList<>();
    private long filled;

    private WeightUpload(long stagingBytes) {
        this.stagingBytes = stagingBytes;
    }

    /** Runs {@code load} in an upload session (joining the thread's open one), which it ends: every copy complete. */
    public static <T> T during(Supplier<T> load) {
        if (CURRENT.get() != null) return load.get();
        WeightUpload session = new WeightUpload(Long.getLong("mmdit.uploadStagingBytes", DEFAULT_STAGING_BYTES));
        CURRENT.set(session);
        boolean done = false;
        try {
            T t = load.get();
            done = true;
            return t;
        } finally {
            CURRENT.remove();
            session.finish(done);
        }
    }

    /** The report of the calling thread's last session that moved anything (null: none). */
    public static Report lastReport() {
        return LAST.get();
    }

    /**
     * {@code raw} (a host tensor, borrowed) on {@code target} in {@code dtype}, owned by the caller: through the thread's
     * session when one is open and {@code target} is an accelerator or meta, else one direct copy.
     */
    static Tensor upload(String key, Tensor raw, DType dtype, DeviceSpec target) {
        WeightUpload s = CURRENT.get();
        if (s == null || target.isCpu() || !raw.is_cpu()) {
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(raw.to(target.torchDevice(), dtype.scalarType()).contiguous());
            }
        }
        return s.add(key, raw, dtype, target);
    }

    private Tensor add(String key, Tensor raw, DType dtype, DeviceSpec target) {
        if (device == null) {
            device = target;
            if (target.isCuda()) cuda = CudaCopies.open(target, stagingBytes);
        } else if (!device.equals(target)) {
            throw new IllegalStateException("one weight upload session per device: " + device + ", then " + target + " (" + key + ")");
        }
        long bytes = raw.numel() * dtype.bytes();
        if (bytes > stagingBytes) { // alone and synchronous: it does not fit a staging buffer
            flush();
            batches.add(List.of(key));
            batchBytes.add(bytes);
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(raw.to(target.torchDevice(), dtype.scalarType()).contiguous());
            }
        }
        long start = (filled + ALIGN - 1) / ALIGN * ALIGN; // each weight at an aligned offset: its dtype view needs it
        if (start + bytes > stagingBytes) {
            flush();
            start = 0;
        }
        batch.add(key);
        filled = start + bytes;
        if (cuda != null) return cuda.stage(raw, dtype, start);
        try (PointerScope scope = new PointerScope()) { // meta: nothing to stage, the shapes and the plan are what is checked
            return Tensors.keep(raw.to(target.torchDevice(), dtype.scalarType()).contiguous());
        }
    }

    /** Sends the current batch (CUDA: its asynchronous copies on the side stream) and starts the next. */
    private void flush() {
        if (batch.isEmpty()) return;
        if (cuda != null) cuda.send();
        batches.add(List.copyOf(batch));
        batchBytes.add(filled);
        batch = new ArrayList<>();
        filled = 0;
    }

    private void finish(boolean succeeded) {
        if (device == null) return; // nothing went to a device
        try {
            if (succeeded) flush();
            if (cuda != null) cuda.close(); // waits for the side stream: every copy complete, staging released
        } finally {
            Report r = new Report(device, stagingBytes, List.copyOf(batches), List.copyOf(batchBytes), System.nanoTime() - t0);
            LAST.set(r);
            if (succeeded) {
                LOG.info(String.format(Locale.ROOT, "weights to %s: %d tensors, %.1f MB in %d batches (2 x %d MB pinned staging%s), %.2f s", device,
                        r.tensors(), r.bytes() / 1e6, batches.size(), stagingBytes >> 20, device.isCuda() ? "" : ", planned only on " + device,
                        r.nanos() / 1e9));
            }
        }
    }

    /**
     * The CUDA half (never run): two pinned staging buffers used in turn; a weight is converted on the host, copied into
     * the current buffer, and its device tensor allocated; {@link #send} queues the buffer's copies on a side stream
     * (non-blocking: pinned source) and records an event, which the host waits for before it fills that buffer again.
     */
    private static final class CudaCopies {
        private final org.bytedeco.pytorch.cuda.CUDAStream side;
        private final Tensor[] staging = new Tensor[2];
        private final org.bytedeco.pytorch.cuda.CUDAEvent[] sent = new org.bytedeco.pytorch.cuda.CUDAEvent[2];
        private final List<Tensor[]> pending = new ArrayList<>(); // {device tensor, staging view}
        private int current;

        private CudaCopies(org.bytedeco.pytorch.cuda.CUDAStream side) {
            this.side = side;
        }

        static CudaCopies open(DeviceSpec device, long stagingBytes) {
            CudaCopies c = new CudaCopies(org.bytedeco.pytorch.global.torch_cuda.getStreamFromPool(false, (byte) Math.max(0, device.index())));
            try (PointerScope scope = new PointerScope()) {
                for (int i = 0; i < 2; i++) {
                    c.staging[i] = Tensors.keep(empty(new long[] {stagingBytes}, new TensorOptions(ScalarType.Byte).pinned_memory(new org.bytedeco.pytorch.BoolOptional(true)),
                            new MemoryFormatOptional()));
                }
            }
            return c;
        }

        /** The device tensor for {@code raw}, whose bytes go to the current buffer at {@code offset}. */
        Tensor stage(Tensor raw, DType dtype, long offset) {
            if (pending.isEmpty() && sent[current] != null) sent[current].synchronize(); // its last copies have read it
            try (PointerScope scope = new PointerScope()) {
                Tensor host = raw.to(dtype.scalarType()).contiguous(); // [shape] on the host in the compute dtype
                long bytes = host.numel() * dtype.bytes();
                Tensor slot = staging[current].narrow(0, offset, bytes).view(dtype.scalarType()).view(Tensors.shape(host));
                slot.copy_(host);
                Tensor dst = empty(Tensors.shape(host), new TensorOptions(dtype.scalarType()).device(new org.bytedeco.pytorch.DeviceOptional(side.device())),
                        new MemoryFormatOptional());
                pending.add(new Tensor[] {Tensors.keep(dst), Tensors.keep(slot)});
                return Tensors.keep(dst);
            }
        }

        void send() {
            org.bytedeco.pytorch.cuda.CUDAEvent allocated = new org.bytedeco.pytorch.cuda.CUDAEvent();
            allocated.record(org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream(side.device_index()));
            allocated.block(side); // the device tensors were allocated on the current stream: the side stream comes after
            try (org.bytedeco.pytorch.cuda.CUDAStreamGuard guard = new org.bytedeco.pytorch.cuda.CUDAStreamGuard(side.unwrap());
                 PointerScope scope = new PointerScope()) {
                for (Tensor[] p : pending) p[0].copy_(p[1], true); // pinned → device, asynchronous on the side stream
                sent[current] = new org.bytedeco.pytorch.cuda.CUDAEvent();
                sent[current].record(side);
            }
            for (Tensor[] p : pending) {
                Native.release(p[0]);
                Native.release(p[1]);
            }
            pending.clear();
            current = 1 - current;
        }

        /** Waits until every copy is done (load time: the host may wait), then frees the staging buffers. */
        void close() {
            try {
                side.synchronize();
            } finally {
                for (Tensor[] p : pending) {
                    Native.release(p[0]);
                    Native.release(p[1]);
                }
                pending.clear();
                for (Tensor t : staging) Native.release(t);
            }
        }
    }
}
