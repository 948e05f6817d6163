package io.mmdit4j.train;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Files2;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shapes demo's frozen T5 gets word-order heads: only the position bias of its first three heads changes. */
class PositionalT5Test {
    static final Path T5 = Path.of(System.getProperty("mmdit.golden", "../shared/golden"), "text_encoders/models/t5/text_encoder_2");

    @Test
    void bucketsAreTransformersBidirectionalOnes() {
        assertEquals(0, PositionalT5.bucket(0, 32, 128));
        assertEquals(17, PositionalT5.bucket(1, 32, 128));  // key after the query: the upper half
        assertEquals(1, PositionalT5.bucket(-1, 32, 128));
        assertEquals(18, PositionalT5.bucket(2, 32, 128));
        assertEquals(26, PositionalT5.bucket(20, 32, 128)); // 8 + int(log(20/8) / log(128/8) * 8) = 10, + 16
        assertEquals(31, PositionalT5.bucket(1000, 32, 128));
    }

    @Test
    void onlyTheFirstHeadsPositionBiasChanges(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("t5");
        Files2.copyTree(T5, dir);
        Path before = tmp.resolve("before.safetensors");
        Files.copy(dir.resolve("model.safetensors"), before);
        PositionalT5.apply(dir);
        try (SafetensorsFile a = SafetensorsFile.open(before); SafetensorsFile b = SafetensorsFile.open(dir.resolve("model.safetensors"));
             PointerScope scope = new PointerScope()) {
            assertEquals(a.keys(), b.keys());
            for (String k : a.keys()) {
                if (!k.equals(PositionalT5.BIAS)) assertTrue(a.load(k).equal(b.load(k)), k + " must not change");
            }
            Tensor old = a.load(PositionalT5.BIAS).to(ScalarType.Float).contiguous(), now = b.load(PositionalT5.BIAS).to(ScalarType.Float).contiguous();
            int buckets = (int) now.size(0), heads = (int) now.size(1);
            float[] o = new float[buckets * heads], n = new float[buckets * heads];
            new FloatPointer(old.data_ptr()).get(o);
            new FloatPointer(now.data_ptr()).get(n);
            for (int k = 0; k < buckets; k++) {
                for (int h = 0; h < heads; h++) {
                    float want = h >= PositionalT5.OFFSETS.length ? o[k * heads + h]
                            : k == PositionalT5.bucket(PositionalT5.OFFSETS[h], 32, 128) ? PositionalT5.STRENGTH : 0f;
                    assertEquals(want, n[k * heads + h], "bucket " + k + ", head " + h);
                }
            }
        }
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertThrows(IllegalArgumentException.class, () -> PositionalT5.apply(empty));
        Path other = tmp.resolve("other");
        Files2.copyTree(T5, other);
        Path config = other.resolve("config.json");
        Files.writeString(config, Files.readString(config).replaceFirst("\"relative_attention_num_buckets\"\\s*:\\s*32", "\"relative_attention_num_buckets\": 64"));
        assertThrows(IllegalArgumentException.class, () -> PositionalT5.apply(other)); // not the weights' bucket count
    }
}
