package io.mmdit4j.runtime;

/**
 * Time as the device sees it. On the CPU (and {@code meta}) an op returns when its work is done, so the host's clock is
 * the op's time: {@link #WALL}. On CUDA an op returns when its kernels are queued, so the host's clock measures launches;
 * {@link #of} gives a timer that records CUDA events on the current stream instead ({@link #mark} costs no host
 * synchronisation; {@link #nanosBetween} waits for the later event, so call it after the work, e.g. once after a
 * denoising loop). The CUDA timer has never run (no GPU here).
 */
public abstract class DeviceTimer {
    /** The host's monotonic clock. */
    public static final DeviceTimer WALL = new DeviceTimer() {
        @Override
        public Object mark() {
            return System.nanoTime();
        }

        @Override
        public long nanosBetween(Object from, Object to) {
            return (Long) to - (Long) from;
        }

        @Override
        public String clock() {
            return "wall";
        }
    };

    /** The timer for work on {@code device}: CUDA events on a CUDA device, else {@link #WALL}. */
    public static DeviceTimer of(DeviceSpec device) {
        return device != null && device.isCuda() ? new CudaEvents() : WALL;
    }

    /** A point in time (a host time, or an event recorded on the current stream). */
    public abstract Object mark();

    /** Nanoseconds from {@code from} to {@code to} (two {@link #mark}s, in that order); may wait for {@code to}'s work. */
    public abstract long nanosBetween(Object from, Object to);

    /** {@code "wall"} or {@code "cuda-events"}: what the numbers are (reported by {@code bench}). */
    public abstract String clock();

    /** Nanoseconds of {@code work} on this timer's clock. */
    public long time(Runnable work) {
        Object a = mark();
        work.run();
        return nanosBetween(a, mark());
    }

    /** CUDA events with timing enabled (libtorch's default event disables it), in a class of its own: loaded only on CUDA. */
    private static final class CudaEvents extends DeviceTimer {
        private static final int CUDA_EVENT_DEFAULT = 0; // cudaEventDefault: timing on (CUDAEvent() is cudaEventDisableTiming)

        @Override
        public Object mark() {
            org.bytedeco.pytorch.cuda.CUDAEvent e = new org.bytedeco.pytorch.cuda.CUDAEvent(CUDA_EVENT_DEFAULT);
            e.record(org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream());
            return e;
        }

        @Override
        public long nanosBetween(Object from, Object to) {
            org.bytedeco.pytorch.cuda.CUDAEvent a = (org.bytedeco.pytorch.cuda.CUDAEvent) from, b = (org.bytedeco.pytorch.cuda.CUDAEvent) to;
            b.synchronize();
            return Math.round(a.elapsed_time(b) * 1e6); // ms (float) → ns
        }

        @Override
        public String clock() {
            return "cuda-events";
        }
    }
}
