package io.mmdit4j.runtime.cuda;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.StepGraph;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.cuda.CUDAEvent;
import org.bytedeco.pytorch.cuda.CUDAStream;
import org.bytedeco.pytorch.cuda.CUDAStreamGuard;
import org.bytedeco.pytorch.cuda.DeviceAssertionsDataVectorCUDAKernelLaunchInfoVectorPair;
import org.bytedeco.pytorch.cuda.MemPool;
import org.bytedeco.pytorch.cuda.StreamFilter;
import org.bytedeco.pytorch.global.torch_cuda;

import java.util.function.Supplier;

import static org.bytedeco.cuda.global.cudart.cudaGraphDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphExecDestroy;
import static org.bytedeco.cuda.global.cudart.cudaGraphInstantiate;
import static org.bytedeco.cuda.global.cudart.cudaGraphLaunch;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaStreamBeginCapture;
import static org.bytedeco.cuda.global.cudart.cudaStreamCaptureModeThreadLocal;
import static org.bytedeco.cuda.global.cudart.cudaStreamEndCapture;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;

/**
 * CUDA graph capture of one denoising step, written after {@code at::cuda::CUDAGraph::capture_begin/capture_end/replay}
 * (which the presets do not map): cudart's stream capture on a side stream, with libtorch's caching allocator routed
 * into a private memory pool for the capture, so the addresses the graph's kernels use stay reserved for it.
 *
 * <p><b>Never run</b>: this project has no GPU, and this file compiles only in the GPU build ({@code mvn -Pcuda}, which
 * brings {@code org.bytedeco:cuda}'s cudart bindings; the default build does not have them and leaves {@code src/cuda}
 * out). It is kept small to be checked by reading. Known assumptions, each from the C++ it mirrors:
 * <ul>
 *   <li>a warm-up run on the capture stream first: cuBLAS/cuDNN handles and workspaces are created lazily, and creating
 *       them under capture is illegal; it also fills the family's per-request caches (guidance offsets) outside the pool;
 *   <li>{@code MemPool.id()} is mapped by the presets with a misleading Java type (the C++ {@code MempoolId_t}, a pair of
 *       ids): it is only passed back to the allocator, never read in Java;
 *   <li>the allocator's stream filter sends to the pool exactly the allocations made on the capture stream (PyTorch
 *       compares capture ids; comparing the stream handle is equivalent while one capture runs on it);
 *   <li>replay launches on the caller's current stream, after the static inputs' copies that were queued there.
 * </ul>
 */
public final class CudaGraphCapture implements StepGraph.Capture {
    @Override
    public String name() {
        return "cuda-graph";
    }

    @Override
    public StepGraph.Captured capture(DeviceSpec device, Supplier<Tensor> step) {
        if (!device.isCuda()) throw new IllegalArgumentException("CUDA graph capture on " + device);
        byte index = (byte) Math.max(0, device.index());
        CUDAStream caller = torch_cuda.getCurrentCUDAStream(index);
        CUDAStream side = torch_cuda.getStreamFromPool(false, index);
        MemPool pool = new MemPool(); // a private pool: the graph's activations never mix with eager allocations
        DeviceAssertionsDataVectorCUDAKernelLaunchInfoVectorPair poolId = pool.id();
        CUstream_st sideHandle = side.stream();
        StreamFilter onCaptureStream = new StreamFilter() {
            @Override
            public boolean call(Pointer stream) {
                return stream != null && stream.address() == sideHandle.address();
            }
        };
        CUgraph_st graph = new CUgraph_st();
        CUgraphExec_st exec = new CUgraphExec_st();
        Tensor output = null;
        try {
            waitFor(side, caller); // the static inputs were copied on the caller's stream
            try (CUDAStreamGuard guard = new CUDAStreamGuard(side.unwrap())) {
                try (PointerScope scope = new PointerScope()) {
                    step.get().close(); // warm-up, eager: lazy library initialisation must not happen under capture
                }
                side.synchronize();
                torch_cuda.beginAllocateToPool(index, poolId, onCaptureStream);
                try {
                    check(cudaStreamBeginCapture(sideHandle, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
                    try {
                        output = step.get(); // recorded, not executed: its values appear at the first replay
                    } finally {
                        check(cudaStreamEndCapture(sideHandle, graph), "cudaStreamEndCapture");
                    }
                } finally {
                    torch_cuda.endAllocateToPool(index, poolId);
                }
                check(cudaGraphInstantiate(exec, graph, 0L), "cudaGraphInstantiate");
            }
            waitFor(caller, side);
        } catch (RuntimeException | Error e) {
            if (output != null) output.close();
            if (!exec.isNull()) cudaGraphExecDestroy(exec);
            if (!graph.isNull()) cudaGraphDestroy(graph);
            pool.close(); // ~MemPool releases the pool (releasePool, emptyCache): no explicit releasePool, it would run twice
            throw e;
        }
        Tensor out = output;
        return new StepGraph.Captured() {
            @Override
            public Tensor replay() {
                CUDAStream current = torch_cuda.getCurrentCUDAStream(index);
                check(cudaGraphLaunch(exec, current.stream()), "cudaGraphLaunch");
                return out;
            }

            @Override
            public void close() {
                out.close();                 // the static output lives in the pool: released first
                cudaGraphExecDestroy(exec);
                cudaGraphDestroy(graph);
                onCaptureStream.close();
                pool.close();                // ~MemPool: releasePool + emptyCache, the blocks go back once the graph is gone
            }
        };
    }

    /** Makes {@code waiter} wait for the work queued so far on {@code on} (an event; no host synchronisation). */
    private static void waitFor(CUDAStream waiter, CUDAStream on) {
        CUDAEvent done = new CUDAEvent();
        done.record(on);
        done.block(waiter);
    }

    private static void check(int status, String call) {
        if (status != cudaSuccess) {
            throw new IllegalStateException(call + " failed: " + cudaGetErrorString(status).getString() + " (" + status + ")");
        }
    }
}
