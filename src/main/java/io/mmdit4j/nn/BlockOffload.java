package io.mmdit4j.nn;

import io.mmdit4j.runtime.DeviceSpec;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Block offload ({@code --offload blocks}) for devices smaller than the model: the transformer blocks' Linear weights stay
 * on the host (pinned, quantized ones in their format), and each block's weights are copied to the device just before it
 * runs — started one block ahead on a side stream, so the copy of block {@code i + 1} overlaps the compute of block
 * {@code i} — and dropped when it finishes. At most two blocks' weights are on the device at a time; after the last block
 * the first one is prefetched again for the next step. Everything else (embedders, norms, biases, the final layer) stays
 * on the device.
 *
 * <p>On the CPU the host is the device: {@link #none()} does nothing. On the meta device the schedule runs with shape-only
 * copies and is recorded ({@link #events}), which is how it is tested; on CUDA the copies run on a stream from libtorch's
 * pool, the compute stream waits for each block's event, and every copy is marked as used by the compute stream
 * ({@code record_stream}) so the caching allocator never hands its memory to the next prefetch while a kernel still reads
 * it.
 */
public final class BlockOffload implements AutoCloseable {
    /** How copies to the device are ordered (tests and devices differ). */
    interface Streams extends AutoCloseable {
        /** Runs {@code copies} so that they can overlap compute; returns a marker {@link #await} waits for. */
        Object copy(Runnable copies);

        /** Makes the compute stream wait for {@code marker}; {@code linears} are the block's (their copies are now used by it). */
        void await(Object marker, List<Linear> linears);

        @Override
        default void close() {}
    }

    private static final Pattern BLOCK = Pattern.compile("^((?:single_)?transformer_blocks\\.\\d+)\\.");
    private static final BlockOffload NONE = new BlockOffload(List.of(), null, null, false);

    private final List<List<Linear>> blocks;
    private final DeviceSpec device;
    private final Streams streams;
    private final boolean recording;
    private final List<String> events = new ArrayList<>();
    private final Map<Integer, Object> pending = new LinkedHashMap<>();
    private int maxResident;

    private BlockOffload(List<List<Linear>> blocks, DeviceSpec device, Streams streams, boolean recording) {
        this.blocks = blocks;
        this.device = device;
        this.streams = streams;
        this.recording = recording;
    }

    private static final Pattern BLOCK_WEIGHT = Pattern.compile("^(single_)?transformer_blocks\\.\\d+\\.");

    /**
     * Which tensors of a diffusers-named StateDict stay on the host when blocks are offloaded ({@code StateDict.keepOnHost}):
     * the matrices of {@code transformer_blocks.N.} and {@code single_transformer_blocks.N.} (the blocks' Linear weights).
     */
    public static boolean isBlockWeight(String key, long[] shape) {
        return shape.length == 2 && BLOCK_WEIGHT.matcher(key).find();
    }

    /** No offload: the weights are where the model is. */
    public static BlockOffload none() {
        return NONE;
    }

    /**
     * The offload of {@code linears} (a model's Linears under their diffusers names) grouped into blocks by their
     * {@code transformer_blocks.N.} / {@code single_transformer_blocks.N.} prefix, in execution order (the double blocks,
     * then the single ones); {@link #none()} on the CPU.
     */
    public static BlockOffload of(Map<String, Linear> linears, DeviceSpec device) {
        if (device.isCpu()) return NONE;
        Map<String, List<Linear>> byBlock = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : linears.entrySet()) {
            Matcher m = BLOCK.matcher(e.getKey() + ".");
            if (m.find()) byBlock.computeIfAbsent(m.group(1), k -> new ArrayList<>()).add(e.getValue());
        }
        List<String> order = new ArrayList<>(byBlock.keySet());
        order.sort((a, b) -> {
            boolean sa = a.startsWith("single_"), sb = b.startsWith("single_");
            if (sa != sb) return sa ? 1 : -1;
            return Integer.compare(index(a), index(b));
        });
        List<List<Linear>> blocks = new ArrayList<>();
        for (String k : order) blocks.add(Collections.unmodifiableList(byBlock.get(k)));
        Streams streams = device.isCuda() ? CudaStreams.open(device) : new Synchronous();
        return new BlockOffload(Collections.unmodifiableList(blocks), device, streams, device.isMeta());
    }

    private static int index(String prefix) {
        return Integer.parseInt(prefix.substring(prefix.lastIndexOf('.') + 1));
    }

    /** Whether blocks move at all. */
    public boolean active() {
        return !blocks.isEmpty();
    }

    /** The number of blocks. */
    public int blocks() {
        return blocks.size();
    }

    /** Before block {@code i} (global execution index) runs: its weights on the device, the next block's copy started. */
    public void before(int i) {
        if (!active()) return;
        if (!pending.containsKey(i)) start(i);
        streams.await(pending.remove(i), blocks.get(i));
        log("run " + i);
        if (i + 1 < blocks.size()) start(i + 1);
    }

    /** After block {@code i}: its device copies dropped; after the last block, the first one's copy starts for the next step. */
    public void after(int i) {
        if (!active()) return;
        for (Linear l : blocks.get(i)) l.unstage();
        log("drop " + i);
        if (i == blocks.size() - 1 && !pending.containsKey(0)) start(0);
    }

    private void start(int i) {
        List<Linear> ls = blocks.get(i);
        pending.put(i, streams.copy(() -> {
            for (Linear l : ls) l.stage(device);
        }));
        log("copy " + i);
        int resident = 0;
        for (List<Linear> b : blocks) if (!b.isEmpty() && b.get(0).isStaged()) resident++;
        maxResident = Math.max(maxResident, resident);
    }

    private void log(String event) {
        if (recording) events.add(event);
    }

    /** The schedule so far on the meta device ({@code copy i}, {@code run i}, {@code drop i}); empty elsewhere. */
    public List<String> events() {
        return Collections.unmodifiableList(events);
    }

    /** The most blocks whose weights were on the device at once. */
    public int maxResident() {
        return maxResident;
    }

    @Override
    public void close() {
        if (!active()) return;
        for (List<Linear> b : blocks) for (Linear l : b) l.unstage();
        pending.clear();
        streams.close();
    }

    /** Copies in order on the current stream (meta: nothing actually moves). */
    private static final class Synchronous implements Streams {
        @Override
        public Object copy(Runnable copies) {
            copies.run();
            return Boolean.TRUE;
        }

        @Override
        public void await(Object marker, List<Linear> linears) {}
    }

    /** CUDA: copies on a side stream from libtorch's pool, ordered by events. Loaded only when a CUDA device is used. */
    private static final class CudaStreams implements Streams {
        private final org.bytedeco.pytorch.cuda.CUDAStream side;

        private CudaStreams(org.bytedeco.pytorch.cuda.CUDAStream side) {
            this.side = side;
        }

        static Streams open(DeviceSpec device) {
            return new CudaStreams(org.bytedeco.pytorch.global.torch_cuda.getStreamFromPool(false, (byte) Math.max(0, device.index())));
        }

        @Override
        public Object copy(Runnable copies) {
            org.bytedeco.pytorch.cuda.CUDAStream compute = org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream();
            org.bytedeco.pytorch.cuda.CUDAEvent ready = new org.bytedeco.pytorch.cuda.CUDAEvent();
            try (org.bytedeco.pytorch.cuda.CUDAStreamGuard guard = new org.bytedeco.pytorch.cuda.CUDAStreamGuard(side.unwrap())) {
                // the side stream must not overwrite memory the compute stream still reads: start after its queued work
                org.bytedeco.pytorch.cuda.CUDAEvent computed = new org.bytedeco.pytorch.cuda.CUDAEvent();
                computed.record(compute);
                computed.block(side);
                copies.run();
                ready.record(side);
            }
            return ready;
        }

        @Override
        public void await(Object marker, List<Linear> linears) {
            org.bytedeco.pytorch.cuda.CUDAStream compute = org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream();
            ((org.bytedeco.pytorch.cuda.CUDAEvent) marker).block(compute);
            org.bytedeco.pytorch.Stream s = compute.unwrap();
            for (Linear l : linears) l.forEachStaged(t -> t.record_stream(s)); // the allocator now knows the compute stream uses them
        }
    }
}
