package io.mmdit4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code mmdit loadtest} in small: mixed requests (guidance, seeds, steps, both endpoints) with a quarter of them abandoned
 * (connections closed, DELETEs) against a server with continuous batching: every other request gets exactly one correct
 * result, the server drains, batches form, and re-made requests equal the batched images within ±1. Only loopback URLs.
 */
class LoadTestTest {
    @Test
    void aSmallMixedRunWithAbortsLosesAndDuplicatesNothing() throws Exception {
        try (Pipeline pipeline = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
             GenerationServer server = GenerationServer.start(pipeline, GenerationServer.Options.defaults().withPort(0))) {
            LoadTest test = new LoadTest(URI.create(server.baseUrl()), null, 8, 32, 4, LoadTest.Mix.MIXED, "64x64", 10, 0.25, 2, 11,
                    Duration.ofMinutes(5)).textLength(32); // every request through both endpoints with a text length of its own
            LoadTest.Report r = test.run(new PrintStream(new ByteArrayOutputStream()));
            JsonNode j = r.json();
            assertTrue(r.ok(), r.summary());
            assertEquals(0, j.get("lost").asInt());
            assertEquals(0, j.get("wrong").asInt());
            assertEquals(0, j.get("duplicated").asInt());
            assertTrue(j.get("aborted").asInt() > 0, r.summary());
            assertEquals(32, j.get("ok").asInt() + j.get("aborted").asInt(), r.summary());
            assertTrue(j.get("server_cancelled").asInt() <= j.get("aborted").asInt(), r.summary());
            assertTrue(j.get("batch_size_histogram").size() > 1, "batches of several sizes: " + r.summary());
            assertEquals(2, j.get("verified").size());
            assertTrue(j.get("images_per_second").asDouble() > 0);
            assertTrue(r.summary().endsWith("PASS"), r.summary());
        }
    }

    @Test
    void aUrlWithoutAServerIsOneClearError() throws Exception {
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort(); // closed again: nothing listens there
        }
        LoadTest test = new LoadTest(URI.create("http://127.0.0.1:" + port), null, 1, 1, 0, LoadTest.Mix.PLAIN, "64x64", 2, 0, 0, 1, Duration.ofSeconds(30));
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> test.run(new PrintStream(new ByteArrayOutputStream())));
        assertTrue(e.getMessage().contains("no server answers there (connection refused)") && e.getMessage().contains(":" + port), e.getMessage());
    }

    @Test
    void onlyThisMachineIsLoadTested() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoadTest.requireLoopback(URI.create("http://10.1.2.3:8080")));
        assertTrue(e.getMessage().contains("not a loopback address"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LoadTest.requireLoopback(URI.create("https://127.0.0.1:8080")));
        LoadTest.requireLoopback(URI.create("http://127.0.0.1:8080"));
        LoadTest.requireLoopback(URI.create("http://localhost:8080"));
        LoadTest.requireLoopback(URI.create("http://[::1]:8080"));
    }
}
