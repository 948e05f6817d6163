package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Inpainting (diffusers' {@code FluxInpaintPipeline}; {@code StableDiffusion3InpaintPipeline} for SD3's 16-channel
 * transformer): with an {@link InitImage}, a grey mask says where to repaint (255, white) and what to keep (0, black),
 * binarised at 0.5 ({@code u8 ≥ 128} repaints). After every step the kept region is set back to the init latents noised to
 * the next sigma (the clean init latents after the last step), so it ends as the VAE's round trip of the init image. Image
 * {@code i} uses {@code masks[i % n]}. Recorded by path and SHA-256 like the init images.
 */
public record InpaintMask(List<Path> masks, List<String> sha256) implements GenerationOption {
    public InpaintMask {
        masks = List.copyOf(masks);
        sha256 = List.copyOf(sha256);
        if (masks.isEmpty()) throw new IllegalArgumentException("mask: none given");
        if (sha256.size() != masks.size()) throw new IllegalArgumentException(masks.size() + " masks but " + sha256.size() + " digests");
        for (String h : sha256) {
            if (!h.matches("[0-9a-f]{64}")) throw new IllegalArgumentException("mask digest is not a SHA-256 in hex: " + h);
        }
    }

    /** The masks as they are now (their digests read from the files). */
    public static InpaintMask of(List<Path> masks) {
        List<String> digests = new ArrayList<>();
        for (Path p : masks) digests.add(InputImages.sha256(p, "--mask"));
        return new InpaintMask(masks, digests);
    }

    public static InpaintMask of(Path mask) {
        return of(List.of(mask));
    }

    /** Fails (before any work) when a mask is missing, changed since it was recorded, or their number does not divide the batch. */
    public void check(int batch) {
        if (batch % masks.size() != 0) {
            throw new InvalidRequestException(masks.size() + " masks for " + batch + " images: give one, or a number that divides the images");
        }
        for (int i = 0; i < masks.size(); i++) InputImages.requireDigest(masks.get(i), sha256.get(i), "mask");
    }

    @Override
    public GenerationOption forImages(int from, int to) {
        return new InpaintMask(InitImage.rows(masks, from, to), InitImage.rows(sha256, from, to));
    }

    @Override
    public void write(ObjectNode s) {
        InitImage.writePaths(s, "mask", masks, sha256);
    }
}
