package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.function.Supplier;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * One denoising step's forward as a replayable graph (CUDA graphs: launch the hundreds of kernels of a step with one
 * call instead of one JNI call and one launch each). A graph replays exactly the work it recorded, reading and writing
 * the same memory every time, so its inputs live in <b>static buffers</b>: {@link #run} copies the step's inputs
 * (latents {@code [B, N, C]}, the step's timestep {@code [B]}, ...) into them, replays, and hands out the graph's
 * <b>static output</b>, which the next replay overwrites. Everything else the step reads (text states, RoPE tables,
 * guidance offsets) must stay alive and unchanged for the graph's lifetime: a family keeps its graph inside its
 * per-request velocity, which owns those tensors.
 *
 * <p>A graph is kept per {@link Key}: the inputs' shapes and dtypes, the device, and a family's <i>variant</i> (what
 * changes the recorded work, not just the data: e.g. which blocks modulation guidance reaches at this step). A new key
 * (another size, batch or dtype, or another guidance window) <b>captures a new graph</b> with buffers of its own; the
 * last {@link #MAX_GRAPHS} stay (least recently used out), so alternating keys do not recapture every step. This is
 * the documented choice over an eager fallback: a request's steps have one shape, and guidance windows give a few
 * variants at most, each captured once.
 *
 * <p>How a step becomes a graph is a {@link Capture}: the CUDA one ({@code runtime.cuda.CudaGraphCapture}, compiled only
 * in the GPU build, {@code mvn -Pcuda}, found through {@link #cudaCapture()}) records the step on a side stream into a
 * private memory pool with cudart's stream capture; it has never run (no GPU here). {@link EagerReplay} is its stand-in
 * on the CPU and {@code meta}: it records the step function and re-runs it against the static buffers, writing into
 * the static output, so the tests check this class's bookkeeping (buffers once per key, inputs copied before every
 * replay, the output the same tensor every step) and that a family's step reads its per-step inputs only through the
 * static buffers (else the replay would differ from the eager step).
 *
 * <p>Not thread-safe: one per request, used by the thread that runs its denoising loop.
 */
public final class StepGraph implements AutoCloseable {
    /** Graphs (with their buffers) kept at once; more keys evict the least recently used. */
    public static final int MAX_GRAPHS = 4;

    /** How a step function is turned into something replayable. */
    public interface Capture {
        /**
         * Records {@code step} on {@code device}: a function that reads only the static buffers it was given and returns a
         * tensor owned by the caller. The captured graph owns that tensor as its static output.
         */
        Captured capture(DeviceSpec device, Supplier<Tensor> step);

        /** A short name for messages and logs ({@code "cuda-graph"}, {@code "eager-replay"}). */
        String name();
    }

    /** A recorded step. */
    public interface Captured extends AutoCloseable {
        /** Re-runs the recorded work on the static buffers' current values; returns the static output (borrowed). */
        Tensor replay();

        /** Releases the graph, its static output and its memory pool. */
        @Override
        void close();
    }

    /** A step over the static input buffers (in the order {@link #run} was given the inputs); the result is owned. */
    @FunctionalInterface
    public interface Step {
        Tensor at(List<Tensor> inputs);
    }

    /** What a graph is specific to. {@code variant} must have value equality (a string, a list). */
    public record Key(List<List<Long>> shapes, List<DType> dtypes, DeviceSpec device, Object variant) {
        static Key of(List<Tensor> inputs, Object variant) {
            List<List<Long>> shapes = new ArrayList<>();
            List<DType> dtypes = new ArrayList<>();
            for (Tensor t : inputs) {
                List<Long> s = new ArrayList<>();
                for (long d : Tensors.shape(t)) s.add(d);
                shapes.add(List.copyOf(s));
                dtypes.add(Tensors.dtype(t));
            }
            return new Key(List.copyOf(shapes), List.copyOf(dtypes), DeviceSpec.of(inputs.get(0)), variant);
        }
    }

    private static final class Graph {
        final List<Tensor> buffers;
        Captured captured;

        Graph(List<Tensor> buffers) {
            this.buffers = buffers;
        }

        void close() {
            if (captured != null) captured.close();
            buffers.forEach(Native::release);
        }
    }

    private final Capture capture;
    private final Map<Key, Graph> graphs = new LinkedHashMap<>(8, 0.75f, true); // access order: the eldest is the LRU
    private long bufferAllocations, captures, replays;

    public StepGraph(Capture capture) {
        if (capture == null) throw new IllegalArgumentException("a StepGraph needs a Capture");
        this.capture = capture;
    }

    /**
     * The step's output for {@code inputs} (borrowed by the caller until its next call: a new reference it must close,
     * whose values the next {@code run} overwrites). The first call for a key allocates the key's static buffers and
     * captures {@code step}; every call copies {@code inputs} into the buffers and replays. All inputs must be on one
     * device (the copies are device-local: no host traffic).
     */
    public Tensor run(Object variant, List<Tensor> inputs, Step step) {
        if (inputs.isEmpty()) throw new IllegalArgumentException("a step graph needs at least one input");
        DeviceSpec device = DeviceSpec.of(inputs.get(0));
        for (Tensor t : inputs) {
            if (!DeviceSpec.of(t).equals(device)) {
                throw new IllegalArgumentException("step graph inputs on " + DeviceSpec.of(t) + " and " + device + ": copy them to one device before the loop");
            }
        }
        // a graph is inference work: its buffers and output are inference tensors, written in place only under the guard
        try (InferenceMode guard = new InferenceMode()) {
            return runInference(Key.of(inputs, variant), device, inputs, step);
        }
    }

    private Tensor runInference(Key key, DeviceSpec device, List<Tensor> inputs, Step step) {
        Graph g = graphs.get(key);
        boolean fresh = g == null;
        if (fresh) g = allocate(inputs);
        try (PointerScope scope = new PointerScope()) {
            for (int k = 0; k < inputs.size(); k++) g.buffers.get(k).copy_(inputs.get(k)); // [same shape], on the graph's stream order
        }
        if (fresh) {
            List<Tensor> buffers = g.buffers;
            try {
                g.captured = capture.capture(device, () -> step.at(buffers));
            } catch (RuntimeException | Error e) {
                g.close();
                throw e;
            }
            captures++;
            graphs.put(key, g);
            evictBeyondLimit();
        }
        replays++;
        return Native.keep(g.captured.replay());
    }

    /** Static buffers like {@code inputs} (uninitialised, on their device), counted. */
    private Graph allocate(List<Tensor> inputs) {
        List<Tensor> buffers = new ArrayList<>(inputs.size());
        try (PointerScope scope = new PointerScope()) {
            for (Tensor t : inputs) {
                buffers.add(Tensors.keep(empty(Tensors.shape(t), t.options(), new MemoryFormatOptional())));
                bufferAllocations++;
            }
        } catch (RuntimeException | Error e) {
            buffers.forEach(Native::release);
            throw e;
        }
        return new Graph(buffers);
    }

    private void evictBeyondLimit() {
        Iterator<Map.Entry<Key, Graph>> it = graphs.entrySet().iterator();
        while (graphs.size() > MAX_GRAPHS && it.hasNext()) {
            Graph eldest = it.next().getValue();
            it.remove();
            eldest.close();
        }
    }

    /** Static input buffers allocated so far (one per input per captured key). */
    public long bufferAllocations() { return bufferAllocations; }

    /** Graphs captured so far. */
    public long captures() { return captures; }

    /** Replays so far (every {@link #run}, the capturing one included). */
    public long replays() { return replays; }

    /** Graphs held now. */
    public int graphs() { return graphs.size(); }

    public String captureName() { return capture.name(); }

    @Override
    public void close() {
        graphs.values().forEach(Graph::close);
        graphs.clear();
    }

    // ---------------------------------------------------------------- captures

    /**
     * The CUDA capture of the GPU build ({@code mvn -Pcuda} compiles {@code src/cuda/java} and registers it as a
     * {@link java.util.ServiceLoader} provider of {@link Capture}), or an {@link IllegalStateException} saying why there is
     * none. The default build has no cudart bindings ({@code org.bytedeco:cuda} comes only with the profile), hence the
     * indirection.
     */
    public static Capture cudaCapture() {
        for (Capture c : ServiceLoader.load(Capture.class, StepGraph.class.getClassLoader())) {
            if ("cuda-graph".equals(c.name())) return c;
        }
        throw new IllegalStateException("CUDA graphs need the GPU build of the engine (mvn -Pcuda: the cudart bindings of org.bytedeco:cuda); "
                + "this build has none");
    }

    /**
     * The stand-in for CUDA graph capture on the CPU and {@code meta}: "capturing" keeps the step function and computes
     * its output once (the static output, as the capture's warm-up run does on CUDA); a replay re-runs the kept function on
     * the static buffers and copies the result into the static output. Counts its captures and replays. It saves nothing
     * (it is the eager step plus a copy): it exists so that graph bookkeeping and a family's graph-safe step run in tests.
     */
    public static final class EagerReplay implements Capture {
        private long captures, replays;

        @Override
        public Captured capture(DeviceSpec device, Supplier<Tensor> step) {
            Tensor output = step.get(); // owned: the static output
            captures++;
            return new Captured() {
                @Override
                public Tensor replay() { // called under StepGraph's InferenceMode guard: output is an inference tensor
                    if (output.is_meta()) {   // shapes only: nothing to copy, but the step still runs (its shapes are checked)
                        step.get().close();
                    } else {
                        try (PointerScope scope = new PointerScope()) {
                            Tensor fresh = step.get();
                            output.copy_(fresh);
                            fresh.close();
                        }
                    }
                    replays++;
                    return output;
                }

                @Override
                public void close() {
                    output.close();
                }
            };
        }

        @Override
        public String name() {
            return "eager-replay";
        }

        public long captures() { return captures; }

        public long replays() { return replays; }
    }
}
