package io.mmdit4j.cli;

import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.pipeline.GenerationSettings;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code --lora file.safetensors[:scale]} (repeatable) and {@code --lora-strict}: LoRAs merged into the transformer in
 * the order given and recorded in the image metadata ({@code loras}), so {@code --from} repeats them when no
 * {@code --lora} is given; without either, the model recipe's LoRA (e.g. {@code sd3.5-large-dmd2}).
 */
final class LoraOptions {
    @Option(names = "--lora", paramLabel = "FILE[:SCALE]", description = "merge a LoRA (diffusers/PEFT or kohya naming) at SCALE (default 1) (repeatable)")
    List<String> specs = new ArrayList<>();

    @Option(names = "--lora-strict", description = "fail when a LoRA has keys that target nothing in the model (default: warn)")
    boolean strict;

    /** The LoRAs given (parsed), else the recorded image's, else null: the model recipe's. */
    List<LoraSpec> resolve(GenerationSettings.Recorded recorded) {
        if (!specs.isEmpty()) {
            List<LoraSpec> out = new ArrayList<>();
            for (String s : specs) out.add(LoraSpec.parse(s));
            return out;
        }
        if (recorded != null && !recorded.loras().isEmpty()) return recorded.loras();
        return null;
    }

    boolean strict(GenerationSettings.Recorded recorded) {
        return strict || (specs.isEmpty() && recorded != null && recorded.loraStrict());
    }
}
