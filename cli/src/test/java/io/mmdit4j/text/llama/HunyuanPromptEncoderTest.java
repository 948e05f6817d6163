package io.mmdit4j.text.llama;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.Encoding;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.clip.ClipTokenizer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * HunyuanVideo's prompt encoding end to end on tiny parts: the hand-made Llama-3-style tokenizer, the golden tiny Llama and the
 * tiny CLIP-L of the FLUX pipeline data, assembled as a diffusers HunyuanVideo folder.
 */
class HunyuanPromptEncoderTest {
    private static final Path FLUX = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");

    private static Path folder(Path tmp) throws IOException {
        Path root = tmp.resolve("hunyuan");
        Path tok = TinyLlamaTokenizerJson.write(root.resolve("tokenizer")).getParent();
        Files.writeString(tok.resolve("tokenizer_config.json"), "{\"pad_token\": \"<pad>\", \"padding_side\": \"right\"}");
        copy(LlamaTextEncoderGoldenTest.MODEL, root.resolve("text_encoder"));
        copy(FLUX.resolve("tokenizer"), root.resolve("tokenizer_2"));
        copy(FLUX.resolve("text_encoder"), root.resolve("text_encoder_2"));
        return root;
    }

    private static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
        }
    }

    private static Tensor longs(long[] data, long... shape) {
        Tensor t = empty(shape, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        new LongPointer(t.data_ptr()).put(data);
        return t;
    }

    @Test
    void defaultTemplateIsThePipelinesAndFormatsLikePython() throws IOException {
        String golden = new ObjectMapper().readTree(LlamaTextEncoderGoldenTest.AREA.resolve("cases/b1_len256_rightpad/case.json").toFile())
                .path("params").path("template").asText();
        assertEquals(golden, HunyuanPromptEncoder.PromptTemplate.DEFAULT.template());
        assertEquals(95, HunyuanPromptEncoder.PromptTemplate.DEFAULT.cropStart());
        assertEquals(golden.replace("{}", "a {cat}"), HunyuanPromptEncoder.PromptTemplate.DEFAULT.apply("a {cat}")); // the prompt is not re-parsed
        assertEquals("{x} says: hi", new HunyuanPromptEncoder.PromptTemplate("{{x}} says: {}", 0).apply("hi"));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanPromptEncoder.PromptTemplate("no field", 0));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanPromptEncoder.PromptTemplate("{} and {}", 0));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanPromptEncoder.PromptTemplate("{name}", 0));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanPromptEncoder.PromptTemplate("{}", -1));
    }

    @Test
    void encodesTemplatedPromptsCropsAndPoolsWithClip(@TempDir Path tmp) throws IOException {
        Path root = folder(tmp);
        List<String> prompts = List.of("a cat", "cat sat!");
        int maxLen = 8;
        try (PointerScope s = new PointerScope(); HunyuanPromptEncoder loaded = HunyuanPromptEncoder.load(root, DType.F32)) {
            assertEquals(1, loaded.textEncoder().loadedLayers(), "only the layers up to hidden_states[-3] are loaded");
            assertEquals(32, loaded.textDim());
            assertEquals(24, loaded.pooledDim()); // the tiny CLIP-L's width
            LlamaTokenizer tok = LlamaTokenizer.fromFolder(root.resolve("tokenizer"));
            // With this tokenizer the template prefix is not 95 tokens: compute it as the pipeline does without a fixed crop.
            HunyuanPromptEncoder.PromptTemplate template = HunyuanPromptEncoder.PromptTemplate.computeCrop(
                    HunyuanPromptEncoder.PromptTemplate.DEFAULT.template(), tok);
            long[] templateIds = tok.ids(HunyuanPromptEncoder.PromptTemplate.DEFAULT.template());
            assertEquals(TinyLlamaTokenizerJson.BRACES, templateIds[templateIds.length - 2]);
            assertEquals(templateIds.length - 2, template.cropStart());
            ClipTokenizer clipTok = ClipTokenizer.fromFolder(root.resolve("tokenizer_2"));
            try (HunyuanPromptEncoder enc = new HunyuanPromptEncoder(tok, LlamaModel.load(root.resolve("text_encoder"), DType.F32), clipTok, ClipTextModel.load(root.resolve("text_encoder_2"), DType.F32),
                    template, HunyuanPromptEncoder.HIDDEN_STATE_SKIP_LAYER);
                 HunyuanPromptEncoder.Embeddings e = enc.encode(prompts, maxLen)) {
                assertArrayEquals(new long[] {2, maxLen, 32}, Tensors.shape(e.promptEmbeds()));
                assertArrayEquals(new long[] {2, maxLen}, Tensors.shape(e.attentionMask()));
                assertArrayEquals(new long[] {2, 24}, Tensors.shape(e.pooled()));
                // The crop starts exactly at the prompt: "a cat" = a, Ġcat, <|eot_id|>; "cat sat!" = c, at, Ġ, s, at, !, <|eot_id|>.
                assertTrue(equal(e.attentionMask(), longs(new long[] {1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0}, 2, maxLen)));

                // Independently: tokenise the templated prompts, full forward, hidden_states[-3], crop.
                int total = maxLen + template.cropStart();
                long[] ids = new long[2 * total], mask = new long[2 * total];
                for (int i = 0; i < 2; i++) {
                    Encoding en = tok.encode(template.apply(prompts.get(i)), total);
                    System.arraycopy(en.ids(), 0, ids, i * total, total);
                    System.arraycopy(en.attentionMask(), 0, mask, i * total, total);
                    assertEquals(i == 0 ? 'a' : 'c', en.ids()[template.cropStart()]);
                }
                try (LlamaModel.Output o = enc.textEncoder().forward(longs(ids, 2, total), longs(mask, 2, total))) {
                    assertTrue(equal(e.promptEmbeds(), o.fromEnd(2).narrow(1, template.cropStart(), maxLen)));
                }
                // The encoder loaded from the folder (default template, partial model) agrees with the full model on the same ids.
                try (HunyuanPromptEncoder.LlamaEmbeddings partial = HunyuanPromptEncoder.llamaEmbeddings(loaded.textEncoder(),
                        longs(ids, 2, total), longs(mask, 2, total), 2, template.cropStart())) {
                    assertTrue(equal(partial.promptEmbeds(), e.promptEmbeds()));
                }
                assertTrue(equal(e.pooled(), enc.pooled(prompts)));
                try (ClipTextModel.Output clip = enc.clip().forward(longs(concat(clipTok.encode("a cat").ids(), clipTok.encode("cat sat!").ids()), 2, 77), false)) {
                    assertTrue(equal(e.pooled(), clip.pooled()));
                }

                try (HunyuanPromptEncoder.Embeddings twice = enc.encode(prompts, 2, maxLen)) {
                    assertArrayEquals(new long[] {4, maxLen, 32}, Tensors.shape(twice.promptEmbeds()));
                    for (int r = 0; r < 4; r++) {
                        assertTrue(equal(twice.promptEmbeds().select(0, r), e.promptEmbeds().select(0, r / 2)), "row " + r);
                        assertTrue(equal(twice.attentionMask().select(0, r), e.attentionMask().select(0, r / 2)));
                        assertTrue(equal(twice.pooled().select(0, r), e.pooled().select(0, r / 2)));
                    }
                }
                assertThrows(IllegalArgumentException.class, () -> enc.encode(prompts, 0, 8));
                assertThrows(IllegalArgumentException.class, () -> enc.encode(List.of(), 8));
                assertThrows(IllegalArgumentException.class, () -> enc.encode(prompts, 0));
                IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class, () -> enc.encode(prompts, 8192));
                assertTrue(tooLong.getMessage().contains("max_position_embeddings 8192"), tooLong.getMessage());
            }
        }
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = new long[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void missingComponentsAreNamed(@TempDir Path tmp) throws IOException {
        Path root = Files.createDirectories(tmp.resolve("partial"));
        Files.createDirectories(root.resolve("tokenizer"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HunyuanPromptEncoder.load(root, DType.F32));
        assertTrue(e.getMessage().contains("'text_encoder/'"), e.getMessage());
    }
}
