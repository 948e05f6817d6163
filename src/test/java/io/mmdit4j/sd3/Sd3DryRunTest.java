package io.mmdit4j.sd3;

import io.mmdit4j.io.MetaWeights;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real SD3 / SD3.5 sizes on meta tensors: full key lists in both namings load and are detected; counts and FLOPs. */
class Sd3DryRunTest {

    /** Learnable parameters written out from the architecture (MODEL-SPEC D.1/D.3), independently of Sd3Parameters. */
    static long expectedCount(long d, int layers, long hd, boolean qk, Set<Integer> dual) {
        long pooled = 2048, joint = 4096, ch = 16, p = 2, lin = d * d + d;
        long n = d * ch * p * p + d + (256 * d + d + lin) + (pooled * d + d + lin) + (joint * d + d);
        for (int i = 0; i < layers; i++) {
            boolean last = i == layers - 1;
            n += (dual.contains(i) ? 9 : 6) * lin + (last ? 2 : 6) * lin;      // norm1, norm1_context
            n += 7 * lin + (last ? 0 : lin) + (qk ? 4 * hd : 0);               // q,k,v,add_q,k,v,to_out (+to_add_out), norms
            n += (8 * d * d + 5 * d) * (last ? 1 : 2);                          // ff (+ff_context)
            if (dual.contains(i)) n += 4 * lin + (qk ? 2 * hd : 0);             // attn2
        }
        return n + 2 * lin + d * p * p * ch + p * p * ch;                       // norm_out, proj_out
    }

    @Test
    void parameterCountsMatchTheReleasedModels() {
        long large = Sd3Parameters.count(Sd3Config.sd35Large());
        assertEquals(expectedCount(2432, 38, 64, true, Set.of()), large);
        assertEquals(8_056_627_520L, large);
        assertTrue(Math.abs(large / 8.1e9 - 1) < 0.01, "SD3.5 Large is 8.1B parameters, got " + large);
        Set<Integer> dual = IntStream.rangeClosed(0, 12).boxed().collect(Collectors.toSet());
        assertEquals(expectedCount(1536, 24, 64, true, dual), Sd3Parameters.count(Sd3Config.sd35Medium()));
        // SD3.5 Medium's "2.5B" counts its 384x384 positional table too
        assertTrue(Math.abs(Sd3Parameters.storedElements(Sd3Config.sd35Medium()) / 2.5e9 - 1) < 0.02);
        assertEquals(expectedCount(1536, 24, 64, false, Set.of()), Sd3Parameters.count(Sd3Config.sd3Medium()));
    }

    @Test
    void realKeyListsLoadInBothNamingsAndTheConfigIsDetected() {
        for (Sd3Config c : new Sd3Config[] {Sd3Config.sd35Large(), Sd3Config.sd35Medium(), Sd3Config.sd3Medium()}) {
            assertEquals(c, Sd3Config.detect(MetaWeights.of("diffusers", Sd3Parameters.shapes(c), DType.BF16)));
            try (Sd3Transformer m = Sd3Transformer.fromStateDict(MetaWeights.of("diffusers", Sd3Parameters.shapes(c), DType.BF16), c, DType.BF16)) {
                assertEquals(c.numLayers(), m.numGuidedBlocks());
            }
            Map<String, long[]> prefixed = new LinkedHashMap<>();
            Sd3Parameters.originalShapes(c).forEach((k, v) -> prefixed.put(Sd3KeyMap.PREFIX + k, v));
            for (Map<String, long[]> original : java.util.List.of(Sd3Parameters.originalShapes(c), prefixed)) {
                StateDict sd = MetaWeights.of("original", original, DType.BF16);
                assertTrue(Sd3KeyMap.isOriginal(sd));
                StateDict mapped = Sd3KeyMap.fromOriginal(sd);
                assertEquals(c, Sd3Config.detect(mapped), "config detected from the original names and shapes");
                assertEquals(Sd3Parameters.shapes(c).keySet(), mapped.keys(), "the key map covers every tensor");
                try (Sd3Transformer m = Sd3Transformer.fromStateDict(mapped, c, DType.BF16)) {
                    assertEquals(c, m.config());
                }
            }
        }
    }

    @Test
    void sd35LargeAt1024HasTheExpectedFlopsAndOutputShape() {
        Sd3Config c = Sd3Config.sd35Large();
        Sd3DryRun.Result r = Sd3DryRun.run(c, 1024, 1024, Sd3DryRun.DEFAULT_TEXT_TOKENS, 1, DType.BF16);
        assertArrayEquals(new long[] {1, 16, 128, 128}, r.outputShape());
        long n = 4096, t = 333, d = 2432;
        // per block: image q,k,v,out + 2 FF GEMMs (12 D² per token); text the same except the last block (q,k,v only)
        double linear = 38 * 2.0 * 12 * d * d * n + 37 * 2.0 * 12 * d * d * t + 2.0 * 3 * d * d * t
                + 2.0 * n * (16L * 4 * d + d * 64) + 2.0 * t * 4096 * d;
        assertTrue(Math.abs(r.linearFlops() / linear - 1) < 0.01, "linear FLOPs " + r.linearFlops() + " vs " + linear);
        assertEquals(38, r.attentionCalls());
        assertEquals(38 * 4.0 * 38 * (n + t) * (n + t) * 64, r.attentionFlops(), 1e6);
        Sd3DryRun.Result medium = Sd3DryRun.run(Sd3Config.sd35Medium(), 1024, 1024, 333, 2, DType.BF16);
        assertEquals(24 + 13, medium.attentionCalls(), "13 dual blocks add an image-only attention");
        assertArrayEquals(new long[] {2, 16, 128, 128}, medium.outputShape());
    }
}
