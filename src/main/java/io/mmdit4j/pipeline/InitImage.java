package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Image-to-image (diffusers' {@code FluxImg2ImgPipeline}, {@code StableDiffusion3Img2ImgPipeline}): the denoising starts
 * from the VAE latents of init images, noised to the schedule's sigma at {@code strength}, and runs only the last
 * {@link #stepsRun steps} of the schedule. Image {@code i} of a request starts from {@code images[i % n]} (diffusers
 * repeats the images to the batch), so {@code n} must divide the number of images.
 *
 * <p>The record keeps each image by path <b>and</b> by the SHA-256 of its bytes: a replay ({@code generate --from}) of a
 * file that has changed since is refused rather than silently making another image ({@link #check}); giving the image
 * again ({@code --init-image}) records its current content.
 *
 * @param images   the init images (PNG exact; other formats as Java's decoders read them)
 * @param strength in (0, 1]: how far into the schedule the run starts (1 = pure noise, the text-to-image start)
 * @param sha256   one lowercase hex digest per image
 */
public record InitImage(List<Path> images, double strength, List<String> sha256) implements GenerationOption {
    public InitImage {
        images = List.copyOf(images);
        sha256 = List.copyOf(sha256);
        if (images.isEmpty()) throw new IllegalArgumentException("init image: none given");
        if (sha256.size() != images.size()) throw new IllegalArgumentException(images.size() + " init images but " + sha256.size() + " digests");
        if (!Double.isFinite(strength) || strength <= 0 || strength > 1) {
            throw new IllegalArgumentException("strength must be in (0, 1], got " + strength);
        }
        for (String h : sha256) {
            if (!h.matches("[0-9a-f]{64}")) throw new IllegalArgumentException("init image digest is not a SHA-256 in hex: " + h);
        }
    }

    /** The images as they are now (their digests read from the files). */
    public static InitImage of(List<Path> images, double strength) {
        List<String> digests = new ArrayList<>();
        for (Path p : images) digests.add(InputImages.sha256(p, "--init-image"));
        return new InitImage(images, strength, digests);
    }

    public static InitImage of(Path image, double strength) {
        return of(List.of(image), strength);
    }

    /**
     * diffusers' strength truncation ({@code get_timesteps}): {@code init_timestep = min(N·strength, N)} in float64,
     * {@code t_start = int(max(N − init_timestep, 0))} truncated toward 0; the run uses the schedule from {@code t_start}.
     */
    public static int startStep(int steps, double strength) {
        double init = Math.min(steps * strength, steps);
        return (int) Math.max(steps - init, 0.0);
    }

    /** The steps of an {@code steps}-step schedule that run at this strength. */
    public int stepsRun(int steps) {
        return steps - startStep(steps, strength);
    }

    /** Fails (before any work) when an image is missing, unreadable, changed since it was recorded, or no step would run. */
    public void check(int steps, int batch) {
        if (stepsRun(steps) < 1) {
            throw new InvalidRequestException(String.format(Locale.ROOT, "strength %s with %d steps runs no step (t_start = %d); raise --strength or --steps",
                    strength, steps, startStep(steps, strength)));
        }
        if (batch % images.size() != 0) {
            throw new InvalidRequestException(images.size() + " init images for " + batch + " images: give one, or a number that divides the images");
        }
        for (int i = 0; i < images.size(); i++) InputImages.requireDigest(images.get(i), sha256.get(i), "init image");
    }

    /** The option of rows {@code from..to-1} of a batch: each row keeps its image. */
    @Override
    public GenerationOption forImages(int from, int to) {
        return new InitImage(rows(images, from, to), strength, rows(sha256, from, to));
    }

    static <T> List<T> rows(List<T> perImage, int from, int to) {
        int n = perImage.size();
        if (n == 1) return perImage;
        if (from % n == 0 && (to - from) % n == 0) return perImage; // whole repetitions keep the list
        List<T> out = new ArrayList<>();
        for (int i = from; i < to; i++) out.add(perImage.get(i % n));
        return out;
    }

    /** The size the images give a request that leaves it open: the first image's, rounded down to multiples of 16. */
    @Override
    public int[] impliedSize() {
        int[] wh = InputImages.size(images.get(0), "init image");
        return new int[] {Math.max(16, wh[0] / 16 * 16), Math.max(16, wh[1] / 16 * 16)};
    }

    @Override
    public void write(ObjectNode s) {
        writePaths(s, "init_image", images, sha256);
        s.put("strength", strength);
    }

    static void writePaths(ObjectNode s, String key, List<Path> paths, List<String> digests) {
        if (paths.size() == 1) {
            s.put(key, paths.get(0).toString());
            s.put(key + "_sha256", digests.get(0));
        } else {
            ArrayNode a = s.putArray(key), d = s.putArray(key + "_sha256");
            paths.forEach(p -> a.add(p.toString()));
            digests.forEach(d::add);
        }
    }
}
