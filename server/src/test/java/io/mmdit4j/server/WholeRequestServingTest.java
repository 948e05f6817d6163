package io.mmdit4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A family without row stepping (COSMOS, like HunyuanVideo and HiDream-I1) is served one request at a time, whole: its
 * images carry their settings and are made again from them (within the ±1 of batch rounding; bit for bit when made alone),
 * a request behind a running one waits in the queue, and DELETE stops the running one between its steps and drops the
 * queued one at once.
 */
class WholeRequestServingTest {
    @Test
    void requestsRunWholeOneAtATimeAndCancelBetweenSteps() throws Exception {
        try (Pipeline pipeline = Pipelines.load("cosmos-tiny-demo", LoadOptions.defaults());
             GenerationServer server = GenerationServer.start(pipeline, ServerApiTest.options().withPort(0))) {
            assertFalse(server.continuousBatching());
            Http http = new Http(server.baseUrl(), null);
            assertFalse(http.get("/v1/models").json().get("data").get(0).get("continuous_batching").asBoolean());

            Http.Response r = http.post("/v1/generations?wait=true", "{\"prompt\": \"a fox\", \"size\": \"64x64\", \"steps\": 3, \"n\": 2, \"seed\": 5}");
            assertEquals(200, r.status(), r.body());
            JsonNode done = r.json();
            assertEquals("succeeded", done.get("state").asText(), done.toString());
            assertEquals(2, done.get("images").size());
            JsonNode image = done.get("images").get(1);
            byte[] png = http.bytes(image.get("url").asText());
            assertEquals(64, Http.png(png).getWidth());
            assertEquals(image.get("settings").toString(), PngImages.readText(png, "png").get(GenerationSettings.METADATA_KEY));
            Http.Response again = http.post("/v1/generations?wait=true", image.get("settings").toString());
            assertEquals(200, again.status(), again.body());
            byte[] alone = http.bytes(again.json().get("images").get(0).get("url").asText());
            ServerApiTest.assertPixelsWithin(Http.png(png), Http.png(alone), 1); // made alone: within the ±1 of batch rounding
            Http.Response twice = http.post("/v1/generations?wait=true", image.get("settings").toString());
            assertArrayEquals(alone, http.bytes(twice.json().get("images").get(0).get("url").asText()), "and bit for bit again");

            String slow = "{\"prompt\": \"a fox\", \"size\": \"64x64\", \"steps\": 5000, \"seed\": 1}";
            String running = http.post("/v1/generations", slow).json().get("id").asText();
            ServerApiTest.awaitRunning(http, running);
            String queued = http.post("/v1/generations", slow).json().get("id").asText();
            assertEquals("queued", http.get("/v1/generations/" + queued).json().get("state").asText(), "one request at a time");
            assertEquals("cancelled", http.delete("/v1/generations/" + queued).json().get("state").asText());
            JsonNode c = http.delete("/v1/generations/" + running).json();
            if (!c.get("state").asText().equals("cancelled")) c = http.await(running); // a running request stops before its next step
            assertEquals("cancelled", c.get("state").asText(), c.toString());
            assertTrue(c.get("progress").get("step").asInt() < 5000, "stopped part way: " + c);
            ServerApiTest.awaitIdle(http);
            assertEquals(200, http.post("/v1/images/generations", "{\"prompt\": \"a fox\", \"size\": \"32x32\"}").status(), "still serving");
        }
    }
}
