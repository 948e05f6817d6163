package io.mmdit4j.lora;

import io.mmdit4j.flux.FluxKeyMap;
import io.mmdit4j.flux.FluxKeyMap.RowSlice;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.sd3.Sd3Transformer;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;

/**
 * How LoRA module names find a model's Linears. A name is tried, after dropping a known prefix ({@code transformer.},
 * {@code lora_unet_}, {@code diffusion_model.}, ...), as a diffusers name, as a name of the model's original layout
 * (FLUX: BFL, whose fused layers map to several diffusers Linears by output rows), and in kohya's underscored form of
 * either ({@code double_blocks_0_img_attn_qkv}: dots became underscores, so it is looked up, never parsed).
 */
final class LoraTargets {
    private static final String[] PREFIXES = {"base_model.model.", "transformer.", "model.diffusion_model.", "diffusion_model.",
            "lora_unet_", "lora_transformer_"};

    final String model;
    final Map<String, Linear> linears;
    private final Set<String> original;
    private final BiFunction<String, Long, List<RowSlice>> originalRows;
    private final Map<String, String> underscored = new HashMap<>();

    private LoraTargets(String model, Map<String, Linear> linears, List<String> original, BiFunction<String, Long, List<RowSlice>> originalRows) {
        this.model = model;
        this.linears = linears;
        this.original = Set.copyOf(original);
        this.originalRows = originalRows;
        for (String n : linears.keySet()) underscored.putIfAbsent(n.replace('.', '_'), n);
        for (String n : original) underscored.putIfAbsent(n.replace('.', '_'), n);
    }

    /** FLUX: diffusers names, BFL names (fused qkv / linear1 split with the model's hidden size) and kohya's form of both. */
    static LoraTargets of(FluxTransformer t) {
        long dim = t.config().innerDim();
        Map<String, Linear> linears = t.linears();
        return new LoraTargets("FLUX transformer", linears, FluxKeyMap.bflLinears(linears.keySet()),
                (name, rows) -> FluxKeyMap.linearRows(name, rows, dim));
    }

    /** SD3: diffusers names and their underscored form. */
    static LoraTargets of(Sd3Transformer t) {
        return new LoraTargets("SD3 transformer", t.linears(), List.of(), (name, rows) -> List.of());
    }

    /**
     * The row slices of the LoRA's output ({@code rows} = rows of lora_B / lora_up) and the diffusers Linears they
     * update, or null when the name targets nothing in this model.
     */
    List<RowSlice> resolve(String loraModule, long rows) {
        String m = loraModule;
        for (boolean stripped = true; stripped; ) {
            stripped = false;
            for (String p : PREFIXES) {
                if (m.startsWith(p) && m.length() > p.length()) {
                    m = m.substring(p.length());
                    stripped = true;
                }
            }
        }
        String name = linears.containsKey(m) || original.contains(m) ? m : underscored.get(m);
        if (name == null) return null;
        List<RowSlice> slices = linears.containsKey(name) ? List.of(new RowSlice(name, 0, rows, 0)) : originalRows.apply(name, rows);
        if (slices.isEmpty()) return null;
        for (RowSlice s : slices) {
            if (!linears.containsKey(s.module())) return null;
        }
        return slices;
    }
}
