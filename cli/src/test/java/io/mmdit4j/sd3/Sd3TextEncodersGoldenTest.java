package io.mmdit4j.sd3;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.Comparison;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SD3's encode_prompt (three tokenizers, penultimate CLIP states, projections, T5, padding) against diffusers, alone. */
class Sd3TextEncodersGoldenTest {
    static final List<String> PROMPTS = List.of("a photo of a cat wearing a tiny hat", "a watercolor painting of a lighthouse at dusk");
    private static Sd3TextEncoders text;

    static Path folder() {
        return GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large");
    }

    static Path caseDir(String name) {
        return GoldenData.root().resolve("sd3_pipeline/cases").resolve(name);
    }

    @BeforeAll
    static void load() {
        text = Sd3TextEncoders.load(folder(), DType.F32, 32);
    }

    @AfterAll
    static void close() {
        text.close();
    }

    private static void assertClose(String name, Tensor actual, Tensor expected) {
        Comparison c = Comparison.of(name, Tensors.toFloats(actual), Tensors.shape(actual), Tensors.toFloats(expected), Tensors.shape(expected),
                2e-4, 2e-4);
        assertTrue(c.pass(), name + ": " + c.summary());
    }

    @Test
    void widthsComeFromTheConfigs() {
        assertEquals(56, text.pooledDim()); // 24 + 32 projections
        assertEquals(32, text.jointDim());  // T5 d_model
        assertTrue(text.hasT5());
    }

    @Test
    void tokenIdsOfAllThreeTokenizers() {
        try (SafetensorsFile debug = SafetensorsFile.open(caseDir("cfg3.5_plain").resolve("debug.safetensors"))) {
            String[] names = {"clip_l_input_ids", "clip_g_input_ids", "t5_input_ids"};
            for (int k = 0; k < 3; k++) {
                try (Tensor expected = debug.load(names[k])) {
                    for (int i = 0; i < PROMPTS.size(); i++) {
                        long[] want = new long[(int) expected.size(1)];
                        try (Tensor row = expected.select(0, i).contiguous()) {
                            new org.bytedeco.javacpp.LongPointer(row.data_ptr()).get(want);
                        }
                        assertArrayEquals(want, text.tokenIds(PROMPTS.get(i), 256)[k], names[k] + " of prompt " + i);
                    }
                }
            }
        }
        long[] g = text.tokenIds("a cat", 256)[1];
        assertEquals(0, g[g.length - 1], "tokenizer_2 pads with '!' (id 0)");
        long[] l = text.tokenIds("a cat", 256)[0];
        assertEquals(49407, l[l.length - 1], "tokenizer pads with <|endoftext|>");
    }

    @Test
    void promptAndNegativeEmbeddingsMatchDiffusers() {
        try (SafetensorsFile out = SafetensorsFile.open(caseDir("cfg3.5_modg_w2_s1").resolve("outputs.safetensors"));
             Sd3TextEncoders.Embeddings e = text.encode(PROMPTS, 1, 256);
             Sd3TextEncoders.Embeddings neg = text.encode(List.of("", ""), 1, 256);
             Tensor pos = text.pooled(List.of("Ultra-detailed, photorealistic, cinematic"));
             Tensor negDir = text.pooled(List.of("Low-res, flat, cartoonish"));
             Tensor ePrompt = out.load("prompt_embeds"); Tensor ePooled = out.load("pooled_prompt_embeds");
             Tensor eNeg = out.load("negative_prompt_embeds"); Tensor eNegPooled = out.load("negative_pooled_prompt_embeds");
             Tensor ePos = out.load("pooled_pos"); Tensor eNegDir = out.load("pooled_neg")) {
            assertArrayEquals(new long[] {2, 333, 32}, Tensors.shape(e.promptEmbeds()));
            assertClose("prompt_embeds", e.promptEmbeds(), ePrompt);
            assertClose("pooled_prompt_embeds", e.pooled(), ePooled);
            assertClose("negative_prompt_embeds", neg.promptEmbeds(), eNeg);
            assertClose("negative_pooled_prompt_embeds", neg.pooled(), eNegPooled);
            assertClose("pooled_pos", pos, ePos.select(0, 0).unsqueeze(0));
            assertClose("pooled_neg", negDir, eNegDir.select(0, 0).unsqueeze(0));
            // the 4 feature columns past the CLIP widths (12 + 16) are zero padding
            float[] pad = Tensors.toFloats(e.promptEmbeds().narrow(1, 0, 77).narrow(2, 28, 4).contiguous());
            for (float f : pad) assertEquals(0f, f);
        }
    }

    @Test
    void imagesPerPromptRepeatsRowsAndNoT5GivesZeros() {
        try (Sd3TextEncoders.Embeddings one = text.encode(List.of("a cat"), 1, 16);
             Sd3TextEncoders.Embeddings two = text.encode(List.of("a cat"), 2, 16)) {
            assertArrayEquals(new long[] {2, 77 + 16, 32}, Tensors.shape(two.promptEmbeds()));
            assertTrue(Arrays.equals(Tensors.toFloats(one.promptEmbeds()), Tensors.toFloats(two.promptEmbeds().select(0, 1))));
        }
        assertThrows(IllegalArgumentException.class, () -> text.encode(List.of("a"), 1, 0));
        assertThrows(IllegalArgumentException.class, () -> text.encode(List.of(), 1, 16));
    }

    @Test
    void withoutT5TheContextTailIsZeros() {
        try (Sd3TextEncoders clipOnly = new Sd3TextEncoders(
                io.mmdit4j.text.clip.ClipTokenizer.fromFolder(folder().resolve("tokenizer")),
                io.mmdit4j.text.clip.ClipTextModel.load(folder().resolve("text_encoder"), DType.F32),
                io.mmdit4j.text.clip.ClipTokenizer.fromFolder(folder().resolve("tokenizer_2")),
                io.mmdit4j.text.clip.ClipTextModel.load(folder().resolve("text_encoder_2"), DType.F32), null, null, 40);
             Sd3TextEncoders.Embeddings e = clipOnly.encode(List.of("a cat"), 1, 8);
             Sd3TextEncoders.Embeddings full = text.encode(List.of("a cat"), 1, 8)) {
            assertFalse(clipOnly.hasT5());
            assertArrayEquals(new long[] {1, 85, 40}, Tensors.shape(e.promptEmbeds()));
            for (float f : Tensors.toFloats(e.promptEmbeds().narrow(1, 77, 8).contiguous())) assertEquals(0f, f);
            float[] clipPart = Tensors.toFloats(e.promptEmbeds().narrow(1, 0, 77).narrow(2, 0, 28).contiguous());
            float[] fullPart = Tensors.toFloats(full.promptEmbeds().narrow(1, 0, 77).narrow(2, 0, 28).contiguous());
            assertArrayEquals(fullPart, clipPart);
        }
    }
}
