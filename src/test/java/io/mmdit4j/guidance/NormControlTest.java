package io.mmdit4j.guidance;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The replication study's norm-control variants: the norms and directions of the vectors they produce. */
class NormControlTest {
    private static final int B = 3, D = 40, BLOCKS = 4;

    private static float[] random(long seed, int n, double scale) {
        Random r = new Random(seed);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (r.nextGaussian() * scale);
        return f;
    }

    private static double[] row(float[] f, int b) {
        double[] out = new double[D];
        for (int i = 0; i < D; i++) out[i] = f[b * D + i];
        return out;
    }

    private static double norm(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s);
    }

    private static double cosine(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s / (norm(a) * norm(b));
    }

    /** Resolves block vectors for temb with w·delta on layers 1.. for rows 0 and 2 (row 1 unguided). */
    private static float[][] resolve(NormControl nc, float[] temb, float[] delta, double w) {
        try (PointerScope scope = new PointerScope()) {
            ModulationGuidance.Builder b = ModulationGuidance.builder()
                    .add(new GuidanceTerm("d", Tensors.keep(Tensors.fromFloats(delta, 1, D)), w, LayerSchedule.from(1), null, new double[] {1, 0, 1}));
            if (nc != null) b.normControl(nc);
            try (ModulationGuidance g = b.build()) {
                BlockConditioning c = g.resolve(Tensors.fromFloats(temb, B, D), 0, BLOCKS);
                assertSame(c.temb(), c.vector(0), "block 0 is not guided");
                float[][] out = new float[BLOCKS][];
                for (int l = 0; l < BLOCKS; l++) out[l] = Tensors.toFloats(c.vector(l));
                return out;
            }
        }
    }

    @Test
    void keepTembNormGivesTheGuidedDirectionAtThePlainNorm() {
        float[] temb = random(1, B * D, 1.0), delta = random(2, D, 0.5);
        float[][] none = resolve(NormControl.NONE, temb, delta, 3.0);
        float[][] keep = resolve(NormControl.KEEP_TEMB_NORM, temb, delta, 3.0);
        for (int l = 1; l < BLOCKS; l++) {
            for (int b : new int[] {0, 2}) {
                double[] t = row(temb, b), guided = row(none[l], b), v = row(keep[l], b);
                assertEquals(norm(t), norm(v), 1e-5 * norm(t), "||vector|| = ||temb||");
                assertEquals(1.0, cosine(v, guided), 1e-6, "the direction of temb + w·delta");
                assertTrue(Math.abs(norm(guided) - norm(t)) > 1e-2 * norm(t), "the test must be able to fail: the norms differ without control");
            }
            assertEquals(java.util.Arrays.toString(row(temb, 1)), java.util.Arrays.toString(row(keep[l], 1)), "an unguided row is untouched");
        }
    }

    @Test
    void matchGuidedNormGivesThePlainDirectionAtTheGuidedNorm() {
        float[] temb = random(3, B * D, 1.0), delta = random(4, D, 0.5);
        float[][] none = resolve(NormControl.NONE, temb, delta, 2.0);
        float[][] match = resolve(NormControl.MATCH_GUIDED_NORM, temb, delta, 2.0);
        for (int l = 1; l < BLOCKS; l++) {
            for (int b : new int[] {0, 2}) {
                double[] t = row(temb, b), guided = row(none[l], b), v = row(match[l], b);
                assertEquals(norm(guided), norm(v), 1e-5 * norm(guided), "||vector|| = ||temb + w·delta||");
                assertEquals(1.0, cosine(v, t), 1e-6, "the direction of temb");
            }
            assertEquals(java.util.Arrays.toString(row(temb, 1)), java.util.Arrays.toString(row(match[l], 1)), "an unguided row is untouched");
        }
    }

    @Test
    void noneIsBitIdenticalToAPlanWithoutNormControl() {
        float[] temb = random(5, B * D, 1.0), delta = random(6, D, 0.5);
        float[][] unset = resolve(null, temb, delta, 3.0), none = resolve(NormControl.NONE, temb, delta, 3.0);
        for (int l = 0; l < BLOCKS; l++) assertTrue(java.util.Arrays.equals(unset[l], none[l]), "block " + l);
        try (PointerScope scope = new PointerScope()) {
            Tensor t = Tensors.fromFloats(temb, B, D), g = Tensors.fromFloats(none[1], B, D);
            assertSame(g, NormControl.NONE.apply(t, g));
            assertTrue(equal(t, NormControl.KEEP_TEMB_NORM.apply(t, t)), "rescaling a vector to its own norm changes no bit");
        }
    }

    @Test
    void offsetsAreReportedBeforeNormControl() {
        float[] temb = random(7, B * D, 1.0), delta = random(8, D, 0.5);
        try (PointerScope scope = new PointerScope();
             ModulationGuidance g = ModulationGuidance.builder().normControl(NormControl.KEEP_TEMB_NORM)
                     .add(new GuidanceTerm("d", Tensors.keep(Tensors.fromFloats(delta, 1, D)), 2.0, LayerSchedule.from(2), null, null)).build()) {
            BlockConditioning c = g.resolve(Tensors.fromFloats(temb, B, D), 0, BLOCKS);
            assertEquals(null, c.offset(1));
            float[] off = Tensors.toFloats(c.offset(2));
            for (int b = 0; b < B; b++) for (int i = 0; i < D; i++) assertEquals(2.0f * delta[i], off[b * D + i], 1e-6f);
        }
    }

    @Test
    void parsesTextAndEnumNames() {
        assertEquals(NormControl.KEEP_TEMB_NORM, NormControl.parse("keep-temb-norm"));
        assertEquals(NormControl.MATCH_GUIDED_NORM, NormControl.parse("MATCH_GUIDED_NORM"));
        assertEquals(NormControl.NONE, NormControl.parse(null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NormControl.parse("unit"));
        assertTrue(e.getMessage().contains("keep-temb-norm"), e.getMessage());
    }
}
