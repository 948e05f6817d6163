package io.mmdit4j.cli;

import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.GoldenData;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code generate --lora FILE[:SCALE]} and {@code --lora-strict}: merged, recorded in the PNG, repeated by --from. */
class LoraOptionsTest {
    private static final String MODEL = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell").toString();
    private static final Path LORAS = GoldenData.root().resolve("lora/loras");

    @Test
    void specsTakeAnOptionalScaleAfterTheLastColon() {
        assertEquals(new LoraSpec(Path.of("a.safetensors"), 0.8), LoraSpec.parse("a.safetensors:0.8"));
        assertEquals(new LoraSpec(Path.of("a.safetensors"), 1.0), LoraSpec.parse("a.safetensors"));
        assertEquals(new LoraSpec(Path.of("d:x/a.safetensors"), -1.5), LoraSpec.parse("d:x/a.safetensors:-1.5"));
        assertEquals(new LoraSpec(Path.of("d:x/a.safetensors"), 1.0), LoraSpec.parse("d:x/a.safetensors"));
    }

    @Test
    void generateMergesRecordsAndRepeatsLoras(@TempDir Path tmp) throws IOException {
        String[] common = {"generate", "--model", MODEL, "--prompt", "a fox", "--width", "32", "--height", "32", "--steps", "1",
                "--max-sequence-length", "16"};
        Path lora = tmp.resolve("lora.png"), again = tmp.resolve("again.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run(concat(common, "--out", lora.toString(),
                "--lora", LORAS.resolve("flux_kohya_r4.safetensors") + ":0.5", "--lora", LORAS.resolve("flux_peft_r4.safetensors").toString()));
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("flux_kohya_r4.safetensors at scale 0.5: 29 LoRA modules merged into 46 Linears"), r.err());
        String meta = PngImages.readText(lora).get("mmdit4j");
        assertTrue(meta.contains("flux_kohya_r4.safetensors\",\"scale\":0.5") && meta.contains("flux_peft_r4.safetensors\",\"scale\":1.0"), meta);

        r = CheckGoldenCommandTest.run("generate", "--from", lora.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.err());
        assertArrayEquals(Files.readAllBytes(lora), Files.readAllBytes(again), "--from merges the recorded LoRAs again");
    }

    @Test
    void strictModeAndMissingFilesAreClearErrors(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--out", tmp.toString(),
                "--lora", tmp.resolve("missing.safetensors").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--lora: no such file"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--out", tmp.toString(), "--width", "32", "--height", "32",
                "--lora", LORAS.resolve("sd3_peft_r4.safetensors").toString(), "--lora-strict");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("sd3_peft_r4.safetensors"), r.err());
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
