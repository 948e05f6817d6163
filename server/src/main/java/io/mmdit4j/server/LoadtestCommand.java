package io.mmdit4j.server;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;

/** {@code mmdit loadtest}: a bounded load test of a running {@code mmdit serve} on this machine (loopback only). */
@Command(name = "loadtest", mixinStandardHelpOptions = true,
        description = {"Sends a bounded number of generation requests from concurrent clients to an `mmdit serve` on this machine and reports "
                + "throughput (images/s), latency percentiles, the server's batch-size histogram, errors, lost or duplicated results and the "
                + "server's RSS before and after. Only loopback addresses are accepted."})
final class LoadtestCommand implements Callable<Integer> {
    @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", description = "the server (loopback only; default: ${DEFAULT-VALUE})")
    String url;
    @Option(names = "--clients", defaultValue = "16", description = "concurrent clients, 1..256 (default: ${DEFAULT-VALUE})")
    int clients;
    @Option(names = "--requests", defaultValue = "200", description = "requests after the warm-up, 1..10000 (default: ${DEFAULT-VALUE})")
    int requests;
    @Option(names = "--warmup", defaultValue = "16", description = "requests before the measured ones (default: ${DEFAULT-VALUE})")
    int warmup;
    @Option(names = "--mix", defaultValue = "mixed", description = "plain (one setting), guided (one direction) or mixed (seeds, prompts, steps, "
            + "guidance directions, weights, layers and step windows all vary; a quarter through the OpenAI endpoint) (default: ${DEFAULT-VALUE})")
    String mix;
    @Option(names = "--size", description = "WIDTHxHEIGHT of every request (default: the model's)")
    String size;
    @Option(names = "--steps", defaultValue = "4", description = "steps of each request; the mixed mix uses STEPS..2*STEPS (default: ${DEFAULT-VALUE})")
    int steps;
    @Option(names = "--text-length", description = "max_sequence_length of every request, both endpoints (default: the model's)")
    Integer textLength;
    @Option(names = "--abort", defaultValue = "0", description = "fraction of requests the client abandons part way (0..0.5): longer ones "
            + "(5 x --steps, at least 50), abandoned after 0.1..1 s by closing the connection or sending DELETE (default: ${DEFAULT-VALUE})")
    double abort;
    @Option(names = "--verify", defaultValue = "0", description = "afterwards, make this many finished requests again one at a time and check "
            + "their images equal the batched ones within ±1 (default: ${DEFAULT-VALUE})")
    int verify;
    @Option(names = "--seed", defaultValue = "0", description = "seed of the request mix (default: ${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--token", description = "bearer token (default: $MMDIT_TOKEN)")
    String token;
    @Option(names = "--max-seconds", defaultValue = "900", description = "stop sending after this long (default: ${DEFAULT-VALUE})")
    long maxSeconds;
    @Option(names = "--json", description = "also write the report as JSON to this file")
    Path json;

    @Override
    public Integer call() throws Exception {
        if (clients < 1 || clients > 256) throw new IllegalArgumentException("--clients must be in 1..256, got " + clients);
        if (requests < 1 || requests > 10_000) throw new IllegalArgumentException("--requests must be in 1..10000, got " + requests);
        if (warmup < 0 || warmup > 1000) throw new IllegalArgumentException("--warmup must be in 0..1000, got " + warmup);
        if (!(abort >= 0 && abort <= 0.5)) throw new IllegalArgumentException("--abort must be in 0..0.5, got " + abort);
        if (steps < 1 || steps > 100) throw new IllegalArgumentException("--steps must be in 1..100, got " + steps);
        if (verify < 0 || verify > 100) throw new IllegalArgumentException("--verify must be in 0..100, got " + verify);
        if (maxSeconds < 1 || maxSeconds > 7200) throw new IllegalArgumentException("--max-seconds must be in 1..7200, got " + maxSeconds);
        LoadTest.Mix m = LoadTest.Mix.parse(mix);
        String t = token != null ? token : System.getenv("MMDIT_TOKEN");
        LoadTest test = new LoadTest(URI.create(url), t, clients, requests, warmup, m, size, steps, abort, verify, seed, Duration.ofSeconds(maxSeconds))
                .textLength(textLength);
        LoadTest.Report r = test.run(System.err);
        System.out.println(r.summary());
        if (json != null) Files.writeString(json, r.json().toPrettyString() + "\n");
        return r.ok() ? 0 : 1;
    }
}
