package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/** diffusers {@code HunyuanVideoMidBlock3D} (one layer): resnet, frame-causal attention (optional), resnet. */
final class MidBlock3D implements AutoCloseable {
    final ResnetBlockCausal3D resnets_0;
    final CausalMidBlockAttention attentions_0; // null without mid_block_add_attention
    final ResnetBlockCausal3D resnets_1;

    private MidBlock3D(ResnetBlockCausal3D r0, CausalMidBlockAttention a0, ResnetBlockCausal3D r1) {
        this.resnets_0 = r0;
        this.attentions_0 = a0;
        this.resnets_1 = r1;
    }

    static MidBlock3D load(StateDict sd, String p, long channels, long groups, boolean attention, DType dtype) {
        ResnetBlockCausal3D r0 = null, r1 = null;
        CausalMidBlockAttention a0 = null;
        try {
            r0 = ResnetBlockCausal3D.load(sd, p + "resnets.0.", channels, channels, groups, dtype);
            if (attention) a0 = CausalMidBlockAttention.load(sd, p + "attentions.0.", channels, groups, dtype);
            r1 = ResnetBlockCausal3D.load(sd, p + "resnets.1.", channels, channels, groups, dtype);
            return new MidBlock3D(r0, a0, r1);
        } catch (RuntimeException e) {
            Modules.closeAll(Arrays.asList(r0, a0, r1));
            throw e;
        }
    }

    Tensor forward(Tensor x) { // [B, C, F, H, W], owned by the caller
        Tensor h = resnets_0.forward(x);
        if (attentions_0 != null) h = Scopes.then(h, attentions_0::forward);
        return Scopes.then(h, resnets_1::forward);
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(resnets_0, attentions_0, resnets_1));
    }
}
