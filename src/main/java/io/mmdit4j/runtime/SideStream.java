package io.mmdit4j.runtime;

/**
 * A second queue of device work, so that one phase (a VAE decode) runs beside another (the next request's denoising):
 * on CUDA a stream from libtorch's pool, entered with a guard that makes it the thread's current stream after waiting
 * (on the device, not the host) for a {@link #mark} of the producing stream; on the CPU and {@code meta} nothing (the
 * phases overlap as two threads, which libtorch's CPU ops allow). The CUDA half has never run (no GPU here).
 *
 * <p>Memory across streams: a tensor made on one stream and read on the side stream must not be freed (and its block
 * reused by the first stream) before the side stream has read it. The decode this serves ends with a blocking copy of
 * its images to the host, after which everything queued on the side stream is done, so its inputs are released only
 * then ({@code pipeline.Denoised}); other uses must call {@code record_stream}.
 */
public final class SideStream {
    private final Object cuda; // a CUDAStream, or null off CUDA

    private SideStream(Object cuda) {
        this.cuda = cuda;
    }

    /** A side stream on {@code device} (CUDA), or the no-op one. */
    public static SideStream open(DeviceSpec device) {
        return new SideStream(device.isCuda() ? Cuda.stream(device) : null);
    }

    /** A point in the current stream's queue on {@code device} (a recorded CUDA event), or null off CUDA. */
    public static Object mark(DeviceSpec device) {
        return device.isCuda() ? Cuda.mark() : null;
    }

    /**
     * Makes this side stream the calling thread's current stream until the returned guard closes, after the work before
     * {@code after} (a {@link #mark}, nullable). Off CUDA a no-op guard.
     */
    public AutoCloseable enter(Object after) {
        return cuda == null ? () -> {} : Cuda.enter(cuda, after);
    }

    /** The CUDA calls, in a class of their own: loaded only when a CUDA device is used. */
    private static final class Cuda {
        static Object stream(DeviceSpec device) {
            return org.bytedeco.pytorch.global.torch_cuda.getStreamFromPool(false, (byte) Math.max(0, device.index()));
        }

        static Object mark() {
            org.bytedeco.pytorch.cuda.CUDAEvent e = new org.bytedeco.pytorch.cuda.CUDAEvent();
            e.record(org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream());
            return e;
        }

        static AutoCloseable enter(Object stream, Object after) {
            org.bytedeco.pytorch.cuda.CUDAStream side = (org.bytedeco.pytorch.cuda.CUDAStream) stream;
            if (after != null) ((org.bytedeco.pytorch.cuda.CUDAEvent) after).block(side); // the side stream waits on the device
            org.bytedeco.pytorch.cuda.CUDAStreamGuard guard = new org.bytedeco.pytorch.cuda.CUDAStreamGuard(side.unwrap());
            return guard::close;
        }
    }
}
