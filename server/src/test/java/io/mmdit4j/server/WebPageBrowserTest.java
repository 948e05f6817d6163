package io.mmdit4j.server;

import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The web page in a real browser (Debian's chromium and chromium-driver, driven by Selenium): a generation submitted
 * through the form shows its progress and appears in the gallery with its settings; a long one is cancelled from the page.
 * In CI ({@code CI} set, or {@code -Dmmdit.browser=required}, as .ci/run does) a missing browser fails the test; elsewhere
 * it is skipped with the packages to install.
 */
class WebPageBrowserTest {
    static final List<Path> DRIVERS = List.of(Path.of("/usr/bin/chromedriver"), Path.of("/usr/lib/chromium/chromedriver"));
    static final List<Path> BROWSERS = List.of(Path.of("/usr/bin/chromium"), Path.of("/usr/bin/chromium-browser"), Path.of("/usr/bin/google-chrome"));
    static Pipeline pipeline;

    @BeforeAll
    static void load() {
        pipeline = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
    }

    @AfterAll
    static void close() {
        if (pipeline != null) pipeline.close();
    }

    static Path find(List<Path> candidates) {
        return candidates.stream().filter(Files::isExecutable).findFirst().orElse(null);
    }

    static WebDriver browser() {
        Path driver = find(DRIVERS), chrome = find(BROWSERS);
        if (driver == null || chrome == null) {
            String msg = "no chromium / chromedriver (apt-get install chromium chromium-driver): looked for " + DRIVERS + " and " + BROWSERS;
            boolean required = System.getenv("CI") != null || "required".equals(System.getProperty("mmdit.browser"));
            if (required) fail(msg);
            assumeTrue(false, msg);
        }
        ChromeOptions o = new ChromeOptions();
        o.setBinary(chrome.toFile());
        o.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900");
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(new File(driver.toString())).usingAnyFreePort().build();
        return new ChromeDriver(service, o); // the given driver: Selenium Manager downloads nothing
    }

    @Test
    void aGenerationSubmittedThroughThePageAppearsInTheGalleryAndALongOneCanBeCancelled() {
        GenerationServer.Options options = GenerationServer.Options.defaults().withPort(0)
                .withLimits(new ServerLimits(4, 2000, 1024, 2000, 8, 64 * 1024));
        try (GenerationServer server = GenerationServer.start(pipeline, options)) {
            WebDriver web = browser();
            try {
                WebDriverWait wait = new WebDriverWait(web, Duration.ofSeconds(60));
                web.get(server.baseUrl() + "/");
                wait.until(d -> d.findElement(By.id("status")).getText().equals("ready"));
                assertTrue(web.findElement(By.id("model")).getText().contains("flux-tiny-demo"));
                set(web, "prompt", "a lighthouse at dusk");
                set(web, "seed", "5");
                new Select(web.findElement(By.id("size"))).selectByValue("64x64");
                set(web, "steps", "3");
                new Select(web.findElement(By.id("direction"))).selectByValue("aesthetics");
                ((JavascriptExecutor) web).executeScript("const w = document.getElementById('weight'); w.value = '2.5';"
                        + "w.dispatchEvent(new Event('input'));");
                assertEquals("2.5", web.findElement(By.id("weight-value")).getText());
                set(web, "layer-from", "1");
                set(web, "layer-to", "3");
                web.findElement(By.id("generate")).click();
                WebElement img = wait.until(d -> d.findElements(By.cssSelector("#gallery .card img")).stream().findFirst().orElse(null));
                wait.until(d -> ((Number) ((JavascriptExecutor) d).executeScript("return arguments[0].naturalWidth", img)).intValue() == 64);
                String card = web.findElement(By.cssSelector("#gallery .card")).getText();
                assertTrue(card.contains("a lighthouse at dusk") && card.contains("seed 5") && card.contains("3 steps"), card);
                assertTrue(card.contains("aesthetics w 2.5 layers 1-3"), card);
                assertTrue(web.findElement(By.id("status")).getText().startsWith("done"), web.findElement(By.id("status")).getText());

                // a long one: progress and a latent preview, then Cancel
                set(web, "steps", "2000");
                web.findElement(By.id("generate")).click();
                wait.until(d -> d.findElement(By.id("status")).getText().contains("running · step"));
                wait.until(d -> d.findElement(By.id("preview")).isDisplayed());
                double progress = ((Number) ((JavascriptExecutor) web).executeScript("return document.getElementById('progress').value")).doubleValue();
                assertTrue(progress > 0 && progress < 1, "progress " + progress);
                web.findElement(By.id("cancel")).click();
                wait.until(d -> d.findElement(By.id("status")).getText().startsWith("cancelled"));
                assertEquals(1, web.findElements(By.cssSelector("#gallery .card")).size(), "nothing added");
                assertFalse(web.findElement(By.id("generate")).getAttribute("disabled") != null, "ready again");
            } finally {
                web.quit();
            }
        }
    }

    private static void set(WebDriver web, String id, String value) {
        WebElement e = web.findElement(By.id(id));
        e.clear();
        e.sendKeys(value);
    }
}
