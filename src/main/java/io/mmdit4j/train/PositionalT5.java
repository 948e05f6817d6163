package io.mmdit4j.train;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.t5.T5Config;
import io.mmdit4j.text.t5.T5Encoder;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Makes a frozen random T5 encoder read word order: heads of its relative-position bias are set to attend (almost only)
 * to the next, the previous and the second-next token. FLUX gives its text tokens no positions of their own, so with a
 * random T5 — whose near-uniform attention mixes every token with the caption's average — "red circles on a blue
 * background" and "blue circles on a red background" become nearly the same tokens, and a shapes model trained on them
 * swaps object and background colours. With these heads a colour word carries the word after it ("red circles" vs "blue
 * background"), so the transformer can bind colours to their roles. Everything else in the encoder stays as it was.
 */
public final class PositionalT5 {
    private PositionalT5() {}

    /** The key of the shared position bias, {@code [buckets, heads]}. */
    static final String BIAS = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    /** The bias the chosen offset gets (others 0): e^8 ≈ 3000 times the weight of any other token. */
    static final float STRENGTH = 8f;
    /** Relative offsets (key − query) the first heads attend to. */
    static final int[] OFFSETS = {1, -1, 2};

    /**
     * Rewrites {@code dir/model.safetensors} (a transformers T5 encoder folder: {@code config.json} gives its buckets) in
     * place, atomically.
     */
    public static void apply(Path dir) throws IOException {
        Path file = dir.resolve("model.safetensors"), config = dir.resolve("config.json");
        if (!Files.isRegularFile(file) || !Files.isRegularFile(config)) {
            throw new IllegalArgumentException(dir + ": not a T5 encoder folder (expected config.json and model.safetensors)");
        }
        T5Config c = T5Config.read(config);
        int numBuckets = c.relativeAttentionNumBuckets(), maxDistance = c.relativeAttentionMaxDistance();
        Path tmp = dir.resolve(".model.safetensors.tmp");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            Map<String, String> metadata;
            try (SafetensorsFile f = SafetensorsFile.open(file, false)) {
                metadata = f.header().metadata();
                for (String k : f.keys()) tensors.put(k, f.load(k).clone());
            }
            Tensor bias = tensors.get(BIAS);
            if (bias == null) throw new IllegalArgumentException(file + ": no " + BIAS);
            long buckets = bias.size(0), heads = bias.size(1);
            if (buckets != numBuckets || heads < OFFSETS.length) {
                throw new IllegalArgumentException(file + ": " + BIAS + " is [" + buckets + ", " + heads + "], expected [" + numBuckets + ", >= " + OFFSETS.length + "]");
            }
            Tensor b = bias.to(ScalarType.Float).contiguous();
            float[] v = new float[(int) b.numel()];
            new FloatPointer(b.data_ptr()).get(v);
            for (int h = 0; h < OFFSETS.length; h++) {
                int target = bucket(OFFSETS[h], numBuckets, maxDistance);
                for (int k = 0; k < buckets; k++) v[(int) (k * heads + h)] = k == target ? STRENGTH : 0f;
            }
            new FloatPointer(b.data_ptr()).put(v);
            tensors.put(BIAS, b.to(bias.scalar_type()));
            Map<String, String> meta = new LinkedHashMap<>(metadata == null ? Map.of() : metadata);
            meta.put("mmdit4j_positional_heads", "offsets 1, -1, 2 (PositionalT5)");
            SafetensorsWriter.write(tmp, tensors, meta);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** The bucket of one offset (key − query): {@link T5Encoder#bucket}, the encoder's own. */
    static int bucket(int relative, int numBuckets, int maxDistance) {
        try (PointerScope scope = new PointerScope()) {
            return (int) T5Encoder.bucket(Tensors.fromFloats(new float[] {relative}, 1).to(ScalarType.Long), numBuckets, maxDistance).item_long();
        }
    }
}
