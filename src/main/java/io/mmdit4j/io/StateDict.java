package io.mmdit4j.io;

import io.mmdit4j.io.quant.QuantizedTensor;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Checkpoint tensors under the names a model expects, after any key mapping. Models {@link #take} what
 * they need with the shape they expect, converted to their compute dtype (a view of the file when the
 * dtype already matches); {@link #requireAllTaken} then reports tensors the model did not use.
 * Every error names the origin, the key, and expected versus found.
 *
 * <p>A {@link #recording} holds no tensors: it answers every {@link #take} with a meta tensor of the expected shape and
 * records the key and shape, so a model's own loader is also its parameter list ({@link ParameterShapes#of}).
 */
public final class StateDict {
    /**
     * A tensor that can be materialised on demand; shape and dtype are known without native calls. A quantized entry
     * (GGUF blocks, bitsandbytes 4-bit, fp8) also gives its stored data through {@code quantized} (null otherwise): a
     * Linear keeps that data and dequantizes per forward ({@link #takeQuantized}); everything else takes the dequantized
     * tensor from {@code loader}.
     */
    public record Entry(long[] shape, DType dtype, String from, Supplier<Tensor> loader, Supplier<QuantizedTensor> quantized) {
        public Entry(long[] shape, DType dtype, String from, Supplier<Tensor> loader) {
            this(shape, dtype, from, loader, null);
        }

        public boolean isQuantized() {
            return quantized != null;
        }
    }

    private final String origin;
    private final Map<String, Entry> entries;
    private final DeviceSpec device;
    private final Set<String> taken = new TreeSet<>();
    private final Map<String, long[]> recorded; // key -> shape in call order; null unless this is a recording
    private final Map<String, Object> built = new LinkedHashMap<>();
    private java.util.function.BiFunction<String, long[], QuantizedTensor> metaQuantization; // recordings only
    private java.util.function.BiPredicate<String, long[]> onHost; // tensors kept on the host for block offload; null: none

    public StateDict(String origin, Map<String, Entry> entries) {
        this(origin, entries, DeviceSpec.CPU, null);
    }

    private StateDict(String origin, Map<String, Entry> entries, DeviceSpec device, Map<String, long[]> recorded) {
        this.origin = origin;
        this.entries = Collections.unmodifiableMap(new LinkedHashMap<>(entries));
        this.device = device;
        this.recorded = recorded;
    }

    /**
     * A StateDict that reads nothing: {@link #take} and {@link #takeOptional} return a meta tensor (no memory) of the
     * expected shape and dtype and record the key and shape ({@link #recorded}); {@link #requireAllTaken} passes. A model
     * loaded from it is a shapes-only model. Loaders that detect the configuration from shapes need the config given.
     */
    public static StateDict recording(String origin) {
        return new StateDict(origin, Map.of(), DeviceSpec.META, new LinkedHashMap<>());
    }

    /** True for a {@link #recording}: it holds no tensors, so a loader's checks of what a checkpoint holds do not apply. */
    public boolean isRecording() {
        return recorded != null;
    }

    /** The keys a loader took from this {@link #recording} with their shapes, in call order (a copy). */
    public Map<String, long[]> recorded() {
        if (recorded == null) throw new IllegalStateException(origin + ": not a recording StateDict");
        Map<String, long[]> out = new LinkedHashMap<>();
        recorded.forEach((k, shape) -> out.put(k, shape.clone()));
        return out;
    }

    /** The same tensors, delivered on {@code device} by {@link #take} (a copy for CUDA; CPU tensors stay views). */
    public StateDict onDevice(DeviceSpec device) {
        if (recorded != null) throw new IllegalStateException(origin + ": a recording stays on the meta device");
        return new StateDict(origin, entries, device, null);
    }

    public DeviceSpec device() {
        return device;
    }

    /**
     * The same tensors, with those {@code onHost(key, shape)} selects delivered on the host instead of this StateDict's
     * device (pinned for a CUDA device, so copies to it can overlap compute): the weights of offloaded blocks
     * ({@code --offload blocks}), which move to the device one block at a time. On the CPU nothing changes; a meta
     * StateDict keeps them on meta.
     */
    public StateDict keepOnHost(java.util.function.BiPredicate<String, long[]> onHost) {
        StateDict sd = new StateDict(origin, entries, device, recorded);
        sd.metaQuantization = metaQuantization;
        sd.onHost = onHost;
        return sd;
    }

    /** Where {@code key} is delivered: the host for a kept tensor of a CUDA StateDict, else this StateDict's device. */
    private DeviceSpec target(String key, long[] shape) {
        return onHost != null && device.isCuda() && onHost.test(key, shape) ? DeviceSpec.CPU : device;
    }

    private static Tensor pinnedIfHost(Tensor t, DeviceSpec target, DeviceSpec device) {
        return target.isCpu() && device.isCuda() ? t.pin_memory() : t;
    }

    /** The tensors of a source under their own names (quantized ones with their stored data, see {@link Entry}). */
    public static StateDict of(TensorSource source) {
        Map<String, Entry> m = new LinkedHashMap<>();
        for (String k : source.keys()) {
            TensorInfo i = source.info(k);
            m.put(k, new Entry(i.shape(), i.dtype(), k, () -> source.load(k), i.quantized() ? () -> source.quantized(k) : null));
        }
        return new StateDict(source.origin(), m);
    }

    public String origin() {
        return origin;
    }

    public Set<String> keys() {
        return entries.keySet();
    }

    public boolean contains(String key) {
        return entries.containsKey(key);
    }

    public Entry entry(String key) {
        return entries.get(key);
    }

    /** Shape of a tensor, or null when absent. */
    public long[] shape(String key) {
        Entry e = entries.get(key);
        return e == null ? null : e.shape();
    }

    /**
     * The shape of {@code key} for config detection: it must exist (else the file is "not a {@code kind} checkpoint")
     * and have rank {@code rank}.
     */
    public long[] requireShape(String key, int rank, String kind) {
        long[] s = shape(key);
        if (s == null) throw new ModelFormatException(origin + ": not a " + kind + " checkpoint: missing tensor '" + key + "'");
        if (s.length != rank) {
            throw new ModelFormatException(origin + ": tensor '" + key + "' has shape " + Arrays.toString(s) + ", expected a rank-" + rank + " tensor");
        }
        return s;
    }

    /** One more than the largest index captured by group 1 of {@code p} in any key (0 when none matches): a block count. */
    public int countIndexed(java.util.regex.Pattern p) {
        int max = -1;
        for (String k : entries.keySet()) {
            java.util.regex.Matcher m = p.matcher(k);
            if (m.find()) max = Math.max(max, Integer.parseInt(m.group(1)));
        }
        return max + 1;
    }

    /**
     * The tensor {@code key}, checked against {@code expectedShape} and converted to {@code dtype}.
     * The result is owned by the caller and survives any enclosing PointerScope.
     */
    public Tensor take(String key, DType dtype, long... expectedShape) {
        Entry e = recorded != null ? record(key, dtype, expectedShape) : entries.get(key);
        if (e == null) {
            throw new ModelFormatException(origin + ": missing tensor '" + key + "' (expected shape "
                    + Arrays.toString(expectedShape) + ")");
        }
        if (!Arrays.equals(e.shape(), expectedShape)) {
            throw new ModelFormatException(origin + ": tensor '" + key + "'" + fromNote(key, e) + " has shape "
                    + Arrays.toString(e.shape()) + ", expected " + Arrays.toString(expectedShape));
        }
        if (!e.dtype().isFloatingPoint()) {
            throw new ModelFormatException(origin + ": tensor '" + key + "' has dtype " + e.dtype().safetensorsName()
                    + ", expected a floating-point type");
        }
        taken.add(key);
        DeviceSpec target = target(key, expectedShape);
        try (PointerScope scope = new PointerScope(); Tensor raw = e.loader().get()) { // a source's tensor is the caller's to close
            if (!target.isCpu()) return WeightUpload.upload(key, raw, dtype, target); // batched through pinned staging in a load
            Tensor out = Tensors.dtype(raw) == dtype ? raw.contiguous() : raw.to(dtype.scalarType()).contiguous();
            return Tensors.keep(pinnedIfHost(out, target, device));
        }
    }

    /**
     * The stored data of a quantized tensor {@code key} (checked against {@code expectedShape}, on this StateDict's device,
     * owned by the caller and not dequantized), or null when the tensor is stored plainly (or absent): the caller then
     * {@link #take}s it. A {@link #recording} with a {@linkplain #quantizedAs meta format} answers with a meta quantized
     * tensor where the format applies.
     */
    public QuantizedTensor takeQuantized(String key, long... expectedShape) {
        if (recorded != null) {
            QuantizedTensor q = metaQuantization == null ? null : metaQuantization.apply(key, expectedShape.clone());
            if (q != null) record(key, DType.F32, expectedShape);
            return q;
        }
        Entry e = entries.get(key);
        if (e == null || !e.isQuantized()) return null;
        if (!Arrays.equals(e.shape(), expectedShape)) {
            throw new ModelFormatException(origin + ": tensor '" + key + "'" + fromNote(key, e) + " has shape "
                    + Arrays.toString(e.shape()) + ", expected " + Arrays.toString(expectedShape));
        }
        taken.add(key);
        QuantizedTensor q = e.quantized().get();
        DeviceSpec target = target(key, expectedShape);
        if (target.isCpu() && device.isCuda()) {
            try (QuantizedTensor mapped = q) {
                return mapped.pinned(); // offloaded: the host copy, pinned
            }
        }
        if (target.isCpu() || target.equals(q.device())) return q;
        try (QuantizedTensor host = q) {
            return host.to(target);
        }
    }

    /**
     * This {@link #recording} answering {@link #takeQuantized} with {@code format(key, shape)} (a meta quantized tensor, or
     * null to take the weight plainly): real-size dry runs of quantized models.
     */
    public StateDict quantizedAs(java.util.function.BiFunction<String, long[], QuantizedTensor> format) {
        if (recorded == null) throw new IllegalStateException(origin + ": only a recording takes a meta quantization");
        this.metaQuantization = format;
        return this;
    }

    /** {@link #take} when the tensor exists, else null; a {@link #recording} takes (and lists) it. */
    public Tensor takeOptional(String key, DType dtype, long... expectedShape) {
        return contains(key) || recorded != null ? take(key, dtype, expectedShape) : null;
    }

    /** A recording's answer to {@code take}: a meta entry of the expected shape, listed unless taken before with it. */
    private Entry record(String key, DType dtype, long[] shape) {
        long[] before = recorded.putIfAbsent(key, shape.clone());
        if (before != null && !Arrays.equals(before, shape)) {
            throw new ModelFormatException(origin + ": tensor '" + key + "' taken as " + Arrays.toString(before) + " and as "
                    + Arrays.toString(shape));
        }
        return MetaWeights.entry(key, shape.clone(), dtype);
    }

    /**
     * Notes that {@code module} was built from the tensors under {@code name} (e.g. by {@code Linear.load}) and returns it.
     * A name built again (the same StateDict loaded twice) keeps its place and the newer module.
     */
    public <T> T built(String name, T module) {
        built.put(name, module);
        return module;
    }

    /**
     * The modules of {@code type} {@linkplain #built(String, Object) built} from this StateDict under their names, in
     * build order (unmodifiable): models list their parts (e.g. every Linear, for LoRA) from what they loaded instead of
     * spelling the names again.
     */
    public <T> Map<String, T> built(Class<T> type) {
        Map<String, T> out = new LinkedHashMap<>();
        built.forEach((name, m) -> {
            if (type.isInstance(m)) out.put(name, type.cast(m));
        });
        return Collections.unmodifiableMap(out);
    }

    /** Accepts a tensor the model deliberately does not use (e.g. a buffer such as {@code position_ids}). */
    public void markIgnored(String key) {
        if (entries.containsKey(key)) taken.add(key);
    }

    /** Fails if the checkpoint holds tensors the model has no place for. */
    public void requireAllTaken() {
        Set<String> left = new TreeSet<>(entries.keySet());
        left.removeAll(taken);
        if (!left.isEmpty()) {
            String list = left.stream().limit(10).map(k -> "'" + k + "'" + fromNote(k, entries.get(k))).collect(Collectors.joining(", "));
            throw new ModelFormatException(origin + ": " + left.size() + " unexpected tensor(s) that this model does not use: "
                    + list + (left.size() > 10 ? ", ..." : ""));
        }
    }

    private static String fromNote(String key, Entry e) {
        return e.from().equals(key) ? "" : " (from '" + e.from() + "')";
    }
}
