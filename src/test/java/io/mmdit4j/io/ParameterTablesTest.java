package io.mmdit4j.io;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxKeyMap;
import io.mmdit4j.flux.FluxParameters;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.hunyuan.HunyuanVideoConfig;
import io.mmdit4j.hunyuan.HunyuanVideoParameters;
import io.mmdit4j.hunyuan.HunyuanVideoTransformer;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sd3.Sd3Config;
import io.mmdit4j.sd3.Sd3Parameters;
import io.mmdit4j.sd3.Sd3Transformer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The parameter tables are the loaders' recordings: at real size they have the released models' parameter counts (as
 * {@code mmdit inspect} printed them from the hand-written tables), and the golden checkpoints hold exactly the recorded
 * tensors, which loading takes (it fails on a missing, mis-shaped or unused tensor).
 */
class ParameterTablesTest {

    @Test
    void realSizeTablesHaveTheReleasedParameterCounts() {
        assertEquals(146_136_339L, AutoencoderKLHunyuanVideo.decoderParameterCount(HunyuanVideoVaeConfig.hunyuanVideo()), "VAE decoder");
        assertEquals(11_901_408_320L, FluxParameters.count(FluxConfig.dev()));
        assertEquals(11_891_178_560L, FluxParameters.count(FluxConfig.schnell()));
        assertEquals(8_056_627_520L, Sd3Parameters.count(Sd3Config.sd35Large()));
        assertEquals(8_056_627_520L + 192 * 192 * 2432, Sd3Parameters.storedElements(Sd3Config.sd35Large()), "plus the positional table");
        assertEquals(12_821_012_544L, HunyuanVideoParameters.count(HunyuanVideoConfig.hunyuanVideo()));
    }

    /**
     * Random weights are drawn parameter by parameter in table order (demo models and tests depend on them), so the
     * recorded order must stay that of the hand-written tables these replaced: hashes of their key lists, taken before.
     */
    @Test
    void tablesKeepTheOrderThatSeedsRandomWeights() {
        assertEquals(766_047_632, order(FluxParameters.shapes(FluxConfig.dev())));
        assertEquals(1_677_068_475, order(Sd3Parameters.shapes(Sd3Config.sd35Large())));
        assertEquals(1_135_561_133, order(Sd3Parameters.shapes(Sd3Config.sd35Medium())), "dual blocks; the positional table first");
        assertEquals(-808_926_440, order(HunyuanVideoParameters.shapes(HunyuanVideoConfig.hunyuanVideo())));
        assertEquals(1_705_861_742, order(AutoencoderKLHunyuanVideo.decoderShapes(HunyuanVideoVaeConfig.hunyuanVideo())), "VAE decoder");
    }

    private static int order(Map<String, long[]> shapes) {
        return String.join(",", shapes.keySet()).hashCode();
    }

    @Test
    void fluxGoldenCheckpointsHoldExactlyTheRecordedTensors() {
        for (String variant : List.of("dev", "schnell", "schnell_bf16")) {
            Path folder = GoldenData.fluxModel(variant).resolve("transformer");
            FluxConfig c = FluxConfig.fromDiffusersConfig(folder.resolve("config.json"));
            Map<String, long[]> table = FluxParameters.shapes(c);
            try (TensorSource s = WeightFiles.open(folder); FluxTransformer m = FluxTransformer.fromStateDict(StateDict.of(s), c, DType.F32)) {
                assertEquals(named(fileShapes(s)), named(table), variant);
                assertEquals(elements(s), FluxParameters.count(c), variant);
                assertEquals(matrices(table), m.linears().keySet(), "every Linear, under the name its loader gave it");
            }
            Path bfl = GoldenData.fluxModel(variant).resolve("flux1-tiny-" + variant + ".safetensors");
            try (TensorSource s = WeightFiles.open(bfl)) {
                assertEquals(named(fileShapes(s)), named(FluxParameters.bflShapes(c)), "BFL names through FluxKeyMap: " + variant);
                try (FluxTransformer m = FluxTransformer.fromStateDict(FluxKeyMap.fromBfl(StateDict.of(s)), c, DType.F32)) {
                    assertEquals(matrices(fileShapes(s)), Set.copyOf(FluxKeyMap.bflLinears(m.linears().keySet())), "BFL Linears for LoRA");
                }
            }
        }
    }

    @Test
    void sd3GoldenCheckpointsHoldExactlyTheRecordedTensors() {
        for (String variant : List.of("sd35l", "sd35m", "sd3m")) {
            Path folder = GoldenData.root().resolve("sd3_transformer/models").resolve(variant).resolve("transformer");
            Sd3Config c = Sd3Config.fromDiffusersConfig(folder.resolve("config.json"));
            Map<String, long[]> table = Sd3Parameters.shapes(c);
            try (TensorSource s = WeightFiles.open(folder); Sd3Transformer m = Sd3Transformer.fromStateDict(StateDict.of(s), c, DType.F32)) {
                assertEquals(named(fileShapes(s)), named(table), variant);
                assertEquals(elements(s), Sd3Parameters.storedElements(c), variant);
                Set<String> linears = matrices(table);
                assertEquals(linears, m.linears().keySet(), "every Linear, under the name its loader gave it");
            }
        }
    }

    @Test
    void hunyuanVideoGoldenCheckpointHoldsExactlyTheRecordedTensors() {
        Path folder = GoldenData.root().resolve("hunyuan_video_transformer/models/tiny/transformer");
        HunyuanVideoConfig c = HunyuanVideoConfig.fromDiffusersConfig(folder.resolve("config.json"));
        try (TensorSource s = WeightFiles.open(folder);
             HunyuanVideoTransformer m = HunyuanVideoTransformer.fromStateDict(StateDict.of(s), c, DType.F32)) {
            assertEquals(named(fileShapes(s)), named(HunyuanVideoParameters.shapes(c)));
            assertEquals(elements(s), HunyuanVideoParameters.count(c));
        }
    }

    private static Map<String, long[]> fileShapes(TensorSource s) {
        Map<String, long[]> out = new TreeMap<>();
        for (String k : s.keys()) out.put(k, s.info(k).shape());
        return out;
    }

    /** Comparable form: name → shape as a list, sorted by name. */
    private static Map<String, List<Long>> named(Map<String, long[]> shapes) {
        Map<String, List<Long>> out = new TreeMap<>();
        shapes.forEach((k, v) -> out.put(k, Arrays.stream(v).boxed().toList()));
        return out;
    }

    private static long elements(TensorSource s) {
        return s.keys().stream().mapToLong(k -> s.info(k).numel()).sum();
    }

    /** The modules whose {@code .weight} is a matrix: the Linears. */
    private static Set<String> matrices(Map<String, long[]> shapes) {
        return shapes.entrySet().stream().filter(e -> e.getKey().endsWith(".weight") && e.getValue().length == 2)
                .map(e -> e.getKey().substring(0, e.getKey().length() - ".weight".length())).collect(Collectors.toSet());
    }
}
