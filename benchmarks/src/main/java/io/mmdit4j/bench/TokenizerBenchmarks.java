package io.mmdit4j.bench;

import io.mmdit4j.text.Encoding;
import io.mmdit4j.text.clip.ClipTokenizer;
import io.mmdit4j.text.t5.T5Tokenizer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Prompts per second of the CLIP (77) and T5 (512) tokenizers on the real vocabularies in ../models/tokenizers. */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@State(org.openjdk.jmh.annotations.Scope.Benchmark)
@Fork(1)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 5, time = 3)
public class TokenizerBenchmarks {
    private static final String[] PROMPTS = {
            "a photo of a cat wearing a tiny hat",
            "A breathtaking panoramic landscape of snow capped mountains at sunrise, golden light, ultra detailed, 8k",
            "Café crème brûlée on a wooden table, “cinematic” lighting — 35mm",
            "Four cows standing in a green field under a blue sky"};
    private ClipTokenizer clip;
    private T5Tokenizer t5;
    private int i;

    @Setup
    public void setUp() {
        Path dir = Path.of(System.getProperty("mmdit.tokenizers", "../models/tokenizers"));
        clip = ClipTokenizer.fromFolder(dir.resolve("clip"));
        t5 = T5Tokenizer.fromFolder(dir.resolve("t5"));
    }

    @Benchmark
    public Encoding clip77() {
        return clip.encode(PROMPTS[i++ & 3]);
    }

    @Benchmark
    public Encoding t5At512() {
        return t5.encode(PROMPTS[i++ & 3], 512);
    }
}
