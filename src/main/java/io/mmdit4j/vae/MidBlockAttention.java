package io.mmdit4j.vae;

import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * The single-head spatial self-attention of AutoencoderKL's mid blocks, as diffusers' {@code AttnProcessor2_0}
 * runs it: GroupNorm over {@code [B, C, HW]}, q/k/v Linear(C→C) over the H·W tokens, SDPA with scale
 * 1/√C, {@code to_out.0}, back to {@code [B, C, H, W]}, plus the residual (rescale factor 1).
 */
final class MidBlockAttention implements Block {
    final GroupNorm group_norm;
    final Linear to_q, to_k, to_v;
    final Linear to_out_0; // to_out.0

    private MidBlockAttention(GroupNorm groupNorm, Linear q, Linear k, Linear v, Linear out) {
        this.group_norm = groupNorm;
        this.to_q = q;
        this.to_k = k;
        this.to_v = v;
        this.to_out_0 = out;
    }

    static MidBlockAttention load(StateDict sd, String p, long channels, long groups, DType dtype) {
        GroupNorm norm = null;
        Linear q = null, k = null, v = null, out = null;
        try {
            norm = GroupNorm.load(sd, p + "group_norm", channels, groups, VaeConfig.NORM_EPS, dtype);
            q = Linear.load(sd, p + "to_q", channels, channels, dtype);
            k = Linear.load(sd, p + "to_k", channels, channels, dtype);
            v = Linear.load(sd, p + "to_v", channels, channels, dtype);
            out = Linear.load(sd, p + "to_out.0", channels, channels, dtype);
            return new MidBlockAttention(norm, q, k, v, out);
        } catch (RuntimeException e) {
            Modules.closeAll(Arrays.asList(norm, q, k, v, out));
            throw e;
        }
    }

    @Override
    public Tensor forward(Tensor x) { // [B, C, H, W] -> [B, C, H, W], owned by the caller
        return Scopes.owned(() -> attend(x));
    }

    private Tensor attend(Tensor x) {
        long b = x.size(0), c = x.size(1), height = x.size(2), width = x.size(3);
        Tensor tokens = x.view(b, c, height * width).transpose(1, 2);              // [B, HW, C]
        Tensor h = group_norm.forward(tokens.transpose(1, 2)).transpose(1, 2);      // [B, HW, C]
        Tensor q = to_q.forward(h).view(b, -1, 1, c).transpose(1, 2);               // [B, 1, HW, C]
        Tensor k = to_k.forward(h).view(b, -1, 1, c).transpose(1, 2);
        Tensor v = to_v.forward(h).view(b, -1, 1, c).transpose(1, 2);
        Tensor a = Attention.sdpa(q, k, v).transpose(1, 2).reshape(b, -1, c).to(q.scalar_type());
        Tensor out = to_out_0.forward(a);                                           // [B, HW, C]
        return out.transpose(-1, -2).reshape(b, c, height, width).add(x);
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(group_norm, to_q, to_k, to_v, to_out_0));
    }
}
