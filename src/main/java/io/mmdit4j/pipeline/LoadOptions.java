package io.mmdit4j.pipeline;

import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How {@link Pipelines#load} loads a model: compute dtype (default: the model descriptor's, else fp32), device, LoRAs
 * (default: those the descriptor's recipe brings), and for single-file FLUX checkpoints the VAE file and the folder of
 * text encoders. Immutable; build with {@link #builder()}.
 */
public record LoadOptions(DType dtype, DeviceSpec device, List<LoraSpec> loras, boolean loraStrict, Path vae, Path textEncoders,
                          ModelRegistry registry, Map<String, Path> components, Boolean offloadText) {
    public LoadOptions {
        if (device == null) device = DeviceSpec.CPU;
        if (loras != null) loras = List.copyOf(loras);
        components = components == null ? Map.of() : Map.copyOf(components);
    }

    /** The folder given for a pipeline component (e.g. {@code text_encoder_4}), or null: the model folder's own. */
    public Path component(String name) {
        return components.get(name);
    }

    public static LoadOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The registry that resolves model names (default: {@link ModelRegistry#standard()}). */
    public ModelRegistry registryOrStandard() {
        return registry != null ? registry : ModelRegistry.standard();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.dtype = dtype;
        b.device = device;
        b.loras = loras == null ? null : new ArrayList<>(loras);
        b.loraStrict = loraStrict;
        b.vae = vae;
        b.textEncoders = textEncoders;
        b.registry = registry;
        b.components = new LinkedHashMap<>(components);
        b.offloadText = offloadText;
        return b;
    }

    public static final class Builder {
        private DType dtype;
        private DeviceSpec device = DeviceSpec.CPU;
        private List<LoraSpec> loras;
        private boolean loraStrict;
        private Path vae;
        private Path textEncoders;
        private ModelRegistry registry;
        private Map<String, Path> components = new LinkedHashMap<>();
        private Boolean offloadText;

        private Builder() {}

        /**
         * A folder that replaces the model folder's component {@code name} (a diffusers component such as
         * {@code text_encoder_4} or {@code tokenizer_4}): HiDream's Llama-3.1-8B-Instruct lives outside its folder.
         */
        public Builder component(String name, Path folder) {
            if (name == null || name.isBlank()) throw new IllegalArgumentException("component name is empty");
            if (folder == null) components.remove(name);
            else components.put(name, folder);
            return this;
        }

        /**
         * Run the text encoders one at a time and release them before the transformer loads (and the transformer before
         * the next request's text encoding): peak memory is the largest part instead of the sum (null: the model's default).
         */
        public Builder offloadText(Boolean offload) {
            this.offloadText = offload;
            return this;
        }

        /** Compute dtype (fp32, bf16); default: the model descriptor's, else fp32. */
        public Builder dtype(DType dtype) {
            this.dtype = dtype;
            return this;
        }

        public Builder device(DeviceSpec device) {
            this.device = device;
            return this;
        }

        /** Adds a LoRA to merge (in order); giving any replaces the LoRA a model recipe brings. */
        public Builder lora(Path file, double scale) {
            if (loras == null) loras = new ArrayList<>();
            loras.add(new LoraSpec(file, scale));
            return this;
        }

        /** The LoRAs to merge (an empty list: none, not even the recipe's; null: the recipe's). */
        public Builder loras(List<LoraSpec> loras) {
            this.loras = loras == null ? null : new ArrayList<>(loras);
            return this;
        }

        /** Fail when a LoRA has keys that target nothing in the model (default: a warning). */
        public Builder loraStrict(boolean strict) {
            this.loraStrict = strict;
            return this;
        }

        /** {@code ae.safetensors} for an original single-file FLUX transformer. */
        public Builder vae(Path vae) {
            this.vae = vae;
            return this;
        }

        /** A folder with {@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/} for a single-file FLUX transformer. */
        public Builder textEncoders(Path folder) {
            this.textEncoders = folder;
            return this;
        }

        public Builder registry(ModelRegistry registry) {
            this.registry = registry;
            return this;
        }

        public LoadOptions build() {
            return new LoadOptions(dtype, device, loras, loraStrict, vae, textEncoders, registry, components, offloadText);
        }
    }
}
