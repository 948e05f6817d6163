package io.mmdit4j.research;

import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.FluxTimesteps;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Modulation statistics: a w = 0 cell has ||temb_guided|| = ||temb|| and no offset; a guided cell's numbers match temb,
 * delta and the adaLN outputs computed here from the checkpoint's weights with plain Java arithmetic.
 */
class ModulationStatsTest {
    private static final SweepSettings S = DemoModel.settings(32, 2);
    private static final SweepDirection DIR = new SweepDirection("vivid", "vivid colors, sharp focus", "washed out, blurry");
    private static final String PROMPT = "a red fox in the snow";
    private static final double W = 2.5;
    private static PipelineSweepModel model;
    private static SafetensorsFile weights;
    private static List<ModulationStats.Row> rows;
    private static String refId, guidedId;

    @BeforeAll
    static void run() {
        model = DemoModel.load(S);
        weights = SafetensorsFile.open(DemoModel.folder().resolve("transformer/diffusion_pytorch_model.safetensors"));
        SweepCell ref = SweepCell.reference(PROMPT, 0), guided = new SweepCell(PROMPT, 0, DIR, W, "1-", "all", NormControl.NONE);
        refId = ref.id(S);
        guidedId = guided.id(S);
        ModulationStats stats = new ModulationStats(model, List.of(refId, guidedId));
        model.generate(List.of(ref, guided), NormControl.NONE, stats, null).close();
        rows = stats.rows();
    }

    @AfterAll
    static void close() {
        weights.close();
        model.close();
    }

    private static List<ModulationStats.Row> of(String cell) {
        return rows.stream().filter(r -> r.cell().equals(cell)).toList();
    }

    @Test
    void anUnguidedCellHasTheGuidedNormOfTembAndNoOffset() {
        List<ModulationStats.Row> ref = of(refId);
        assertEquals(2 * 5, ref.size(), "2 steps x 5 blocks");
        for (ModulationStats.Row r : ref) {
            assertEquals(r.tembNorm(), r.guidedNorm(), 0.0, "||temb_guided|| = ||temb||");
            assertEquals(0.0, r.offsetNorm(), 0.0, "no delta");
            assertTrue(Double.isNaN(r.angleDeg()));
            assertTrue(r.tembNorm() > 0);
            assertEquals(r.block() < 2 ? 12 : 3, r.modulation().size(), "double blocks: 2 streams x 6; single blocks: 3");
            assertEquals(r.block() < 2 ? "double" : "single", r.kind());
        }
    }

    // ------------------------------------------------------------------ an independent computation from the weights

    private static float[] w(String key) {
        try (PointerScope s = new PointerScope()) {
            return Tensors.toFloats(weights.load(key));
        }
    }

    /** y = W x + b for W [out, in] row-major. */
    private static double[] linear(String prefix, double[] x) {
        float[] wt = w(prefix + ".weight"), b = w(prefix + ".bias");
        double[] y = new double[b.length];
        for (int o = 0; o < y.length; o++) {
            double s = b[o];
            for (int i = 0; i < x.length; i++) s += wt[o * x.length + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private static double[] silu(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) y[i] = x[i] / (1 + Math.exp(-x[i]));
        return y;
    }

    private static double[] mlp(String prefix, double[] x) {
        return linear(prefix + ".linear_2", silu(linear(prefix + ".linear_1", x)));
    }

    /** diffusers get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0): [cos, sin]. */
    private static double[] sinusoid(double t) {
        double[] e = new double[256];
        for (int i = 0; i < 128; i++) {
            double f = Math.exp(-Math.log(10000) * i / 128);
            e[i] = Math.cos(t * f);
            e[128 + i] = Math.sin(t * f);
        }
        return e;
    }

    private static double[] pooled(String prompt) {
        try (PointerScope s = new PointerScope()) {
            float[] f = Tensors.toFloats(model.pipeline().unwrap(io.mmdit4j.flux.FluxPipeline.class).textEncoders().pooled(List.of(prompt)));
            double[] d = new double[f.length];
            for (int i = 0; i < f.length; i++) d[i] = f[i];
            return d;
        }
    }

    private static double[] add(double[] a, double[] b, double scale) {
        double[] y = a.clone();
        for (int i = 0; i < y.length; i++) y[i] += scale * b[i];
        return y;
    }

    private static double norm(double[] v) {
        return ModulationStats.norm(v);
    }

    private static double norm(double[] v, int chunk, int size) {
        double[] c = new double[size];
        System.arraycopy(v, chunk * size, c, 0, size);
        return norm(c);
    }

    private static void close(double expected, double actual, String what) {
        assertEquals(expected, actual, 1e-4 * Math.max(1, Math.abs(expected)), what);
    }

    @Test
    void aGuidedCellMatchesTembDeltaAndModulationsComputedFromTheWeights() {
        Schedule schedule = model.pipeline().unwrap(io.mmdit4j.flux.FluxPipeline.class).scheduler().schedule(S.steps(), (S.width() / 16) * (S.height() / 16));
        double g = FluxTimesteps.modelGuidance(S.guidanceScale(), DType.F32);
        double[] text = mlp("time_text_embed.text_embedder", pooled(PROMPT));
        double[] delta = add(mlp("time_text_embed.text_embedder", pooled(DIR.pos())), mlp("time_text_embed.text_embedder", pooled(DIR.neg())), -1);
        double[] offset = add(new double[delta.length], delta, W);
        int d = delta.length;
        List<ModulationStats.Row> guided = of(guidedId);
        assertEquals(10, guided.size());
        for (ModulationStats.Row r : guided) {
            double t = FluxTimesteps.modelTimestep(schedule.timestep(r.step()), DType.F32, DType.F32);
            double[] temb = add(add(mlp("time_text_embed.timestep_embedder", sinusoid(t)), mlp("time_text_embed.guidance_embedder", sinusoid(g)), 1), text, 1);
            boolean on = r.block() >= 1; // layers "1-"
            double[] vec = on ? add(temb, offset, 1) : temb;
            String at = "step " + r.step() + " block " + r.block() + ": ";
            close(norm(temb), r.tembNorm(), at + "||temb||");
            close(norm(vec), r.guidedNorm(), at + "||temb_guided||");
            close(on ? norm(offset) : 0, r.offsetNorm(), at + "||w·delta||");
            if (on) {
                double cos = ModulationStats.dot(temb, offset) / (norm(temb) * norm(offset));
                close(Math.toDegrees(Math.acos(cos)), r.angleDeg(), at + "angle");
            }
            Map<String, Double> m = r.modulation();
            if (r.block() < 2) {
                double[] img = linear("transformer_blocks." + r.block() + ".norm1.linear", silu(vec));
                double[] txt = linear("transformer_blocks." + r.block() + ".norm1_context.linear", silu(vec));
                String[] names = {"shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp"};
                for (int k = 0; k < 6; k++) {
                    close(norm(img, k, d), m.get("img_" + names[k]), at + "img " + names[k]);
                    close(norm(txt, k, d), m.get("txt_" + names[k]), at + "txt " + names[k]);
                }
            } else {
                double[] single = linear("single_transformer_blocks." + (r.block() - 2) + ".norm.linear", silu(vec));
                String[] names = {"shift", "scale", "gate"};
                for (int k = 0; k < 3; k++) close(norm(single, k, d), m.get("single_" + names[k]), at + names[k]);
            }
        }
        // the guided and unguided rows share temb (same prompt, seed and step; their prompts are encoded in one batch, whose
        // GEMM blocking may round the two rows differently in the last bits)
        for (int i = 0; i < guided.size(); i++) {
            double ref = of(refId).get(i).tembNorm();
            assertEquals(ref, guided.get(i).tembNorm(), 1e-6 * ref);
        }
    }
}
