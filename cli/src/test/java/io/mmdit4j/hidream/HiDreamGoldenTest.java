package io.mmdit4j.hidream;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every hidream_transformer and hidream_pipeline golden case, and the plain case's intermediates (embeddings, RoPE table). */
class HiDreamGoldenTest {
    static Path root(String area) { return GoldenData.root().resolve(area); }

    private static List<CaseResult> run(String area) {
        List<CaseResult> results = new GoldenRunner().run(List.of(root(area)), r -> { });
        List<String> failures = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(failures.isEmpty(), "golden failures:\n" + String.join("\n", failures));
        return results;
    }

    @Test
    void allTransformerCasesPass() {
        List<CaseResult> results = run("hidream_transformer");
        assertEquals(11, results.stream().map(CaseResult::caseName).distinct().count());
        assertEquals(8, results.stream().filter(r -> r.output().equals("temb_guided")).count(), "guided cases compare temb_guided");
    }

    @Test
    void allPipelineCasesPass() {
        List<CaseResult> results = run("hidream_pipeline");
        assertEquals(5, results.stream().map(CaseResult::caseName).distinct().count());
        assertEquals(3, results.stream().filter(r -> r.output().equals("pooled_pos")).count(), "guided cases compare the guidance prompts' pooled vectors");
    }

    @Test
    void plainCaseIntermediatesMatchTheReference() {
        Path c = root("hidream_transformer").resolve("cases/tiny_nonsquare_plain");
        try (HiDreamTransformer m = HiDreamTransformer.load(root("hidream_transformer").resolve("models/tiny/transformer"), DType.F32);
             SafetensorsFile in = SafetensorsFile.open(c.resolve("inputs.safetensors"));
             SafetensorsFile dbg = SafetensorsFile.open(c.resolve("debug.safetensors"));
             InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            close(dbg.load("p_embedder_out"), m.p_embedder.forward(in.load("pooled_embeds")), 1e-5);
            close(dbg.load("caption_projection_0_out"), m.caption_projection.get(0).forward(in.load("encoder_hidden_states_llama3").select(0, 0)), 1e-5);
            close(dbg.load("caption_projection_t5_out"), m.caption_projection.get(5).forward(in.load("encoder_hidden_states_t5")), 1e-5);
            Tensor x = in.load("hidden_states");
            try (HiDreamTransformer.Layout l = m.layout((int) x.size(2), (int) x.size(3), 10 + 7, 7)) {
                assertTrue(l.padded() && l.imageTokens() == 24, "6x10 latents: 15 tokens padded to max_seq 24");
                Tensor rope = dbg.load("rope").select(0, 0).select(1, 0);                    // [S, pairs, 2, 2] = [[cos, -sin], [sin, cos]]
                long pairs = rope.size(1);
                Tensor cos = l.rope().cos().view(-1, pairs, 2).select(2, 0), sin = l.rope().sin().view(-1, pairs, 2).select(2, 0);
                close(rope.select(2, 0).select(2, 0), cos, 1e-6);
                close(rope.select(2, 1).select(2, 0), sin, 1e-6);
            }
        }
    }

    private static void close(Tensor expected, Tensor actual, double tol) {
        assertTrue(actual.allclose(expected, tol, tol, false), "max |actual − expected| = " + actual.sub(expected).abs().max().item_float());
    }
}
