package io.mmdit4j.cli;

import io.mmdit4j.pipeline.GenerationRequest;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The prompts, size, steps, seeds and text length of a request as command-line flags; what is not given stays open. */
final class RequestOptions {
    @Option(names = "--prompt", description = "a prompt (repeatable)")
    List<String> prompts = new ArrayList<>();
    @Option(names = "--prompts-file", description = "a file with one prompt per line (blank lines and lines starting with # are skipped), or JSON Lines "
            + "(.jsonl: one {\"prompt\": ..., \"seed\": ..., ...} object per line, each a request of its own with these options as defaults)")
    Path promptsFile;
    @Option(names = "--width", description = "width in pixels, multiple of 16 (default: the model's)")
    Integer width;
    @Option(names = "--height", description = "height in pixels, multiple of 16 (default: the model's)")
    Integer height;
    @Option(names = "--steps", description = "denoising steps (default: the model's)")
    Integer steps;
    @Option(names = "--seed", paramLabel = "SEED", description = "seed 0..2^64-1 (PyTorch's range): once (image i gets seed+i, modulo 2^64) or once per image (default: 0)")
    List<String> seeds = new ArrayList<>();
    @Option(names = "--batch", description = "images per prompt (default: 1)")
    Integer batch;
    @Option(names = "--max-sequence-length", description = "text-encoder tokens (default: the model's; FLUX-schnell 256, dev 512)")
    Integer maxSequenceLength;

    /** Sets the given values on {@code b}; {@code required}: fail when no prompt is given at all. */
    void apply(GenerationRequest.Builder b, boolean required) throws IOException {
        List<String> all = new ArrayList<>(prompts);
        if (promptsFile != null && jsonLines().isEmpty()) PromptsFile.lines(promptsFile).forEach(l -> all.add(l.text()));
        if (!all.isEmpty()) b.prompts(all);
        else if (promptsFile != null) b.prompts(List.of("")); // JSON Lines: each line brings its prompt
        else if (required) throw new IllegalArgumentException("give at least one --prompt (or --prompts-file / --from)");
        if (batch != null) b.imagesPerPrompt(batch);
        if (width != null) b.width(width);
        if (height != null) b.height(height);
        if (steps != null) b.steps(steps);
        if (!seeds.isEmpty()) b.seeds(parseSeeds(seeds));
        if (maxSequenceLength != null) b.maxSequenceLength(maxSequenceLength);
    }

    /** The lines of a JSON Lines prompts file (each a request of its own), or none. */
    List<PromptsFile.Line> jsonLines() throws IOException {
        if (promptsFile == null) return List.of();
        if (!Files.isRegularFile(promptsFile)) throw new IllegalArgumentException("--prompts-file " + promptsFile + ": no such file");
        List<PromptsFile.Line> lines = PromptsFile.lines(promptsFile);
        if (lines.isEmpty()) throw new IllegalArgumentException("--prompts-file " + promptsFile + ": no prompts in it");
        if (!PromptsFile.isJsonLines(promptsFile, lines)) return List.of();
        if (!prompts.isEmpty()) throw new IllegalArgumentException("--prompt and a JSON Lines --prompts-file: put every prompt in the file");
        return lines;
    }

    /** Seeds 0..2^64-1 (PyTorch's range) as 64-bit patterns. */
    static long[] parseSeeds(List<String> texts) {
        long[] out = new long[texts.size()];
        for (int i = 0; i < out.length; i++) {
            String t = texts.get(i).trim();
            try {
                if (t.startsWith("-") || t.startsWith("+")) throw new NumberFormatException();
                out[i] = Long.parseUnsignedLong(t);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seed " + t + ": expected a whole number in 0..18446744073709551615 (2^64-1)");
            }
        }
        return out;
    }
}
