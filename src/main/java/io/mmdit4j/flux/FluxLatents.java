package io.mmdit4j.flux;

import org.bytedeco.pytorch.Tensor;

/** FluxPipeline's 2x2 patch packing: latents [B, C, H, W] to tokens [B, (H/2)(W/2), 4C] with (c, dy, dx) per token. */
public final class FluxLatents {
    private FluxLatents() {}

    public static Tensor pack(Tensor latents) { // [B,C,H,W] -> [B,(H/2)(W/2),4C]
        long b = latents.size(0), c = latents.size(1), h = latents.size(2), w = latents.size(3);
        return latents.view(b, c, h / 2, 2, w / 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h / 2) * (w / 2), c * 4);
    }

    public static Tensor unpack(Tensor tokens, long height, long width) { // [B,N,4C] -> [B,C,height,width] (latent grid)
        long b = tokens.size(0), ch = tokens.size(2);
        return tokens.view(b, height / 2, width / 2, ch / 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, ch / 4, height, width);
    }
}
