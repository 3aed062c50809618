/*
 * A local, in-memory Nessie server for the Asgard test stack.
 *
 * Nessie's own server (nessie-quarkus) is not served by the package registry this project may use,
 * so this wires the same Nessie REST services (API v1 and v2) the way Nessie's own embedded test
 * server does (nessie-jaxrs-testextension): Weld (CDI) + Jersey on Grizzly, with the in-memory
 * version store. Nothing here is persistent: every start is an empty repository with branch `main`.
 *
 * Usage: java -cp 'lib/*:classes' NessieLocal <host> <port>
 * Serves http://<host>:<port>/api/v1/... and /api/v2/... like a real Nessie server.
 */
import java.net.URI;
import java.util.concurrent.CountDownLatch;
import org.glassfish.grizzly.http.server.HttpServer;
import org.glassfish.jersey.grizzly2.httpserver.GrizzlyHttpServerFactory;
import org.glassfish.jersey.message.DeflateEncoder;
import org.glassfish.jersey.message.GZipEncoder;
import org.glassfish.jersey.server.ResourceConfig;
import org.glassfish.jersey.server.filter.EncodingFilter;
import org.jboss.weld.environment.se.Weld;
import org.projectnessie.jaxrs.ext.AuthorizerExtension;
import org.projectnessie.jaxrs.ext.ContextPrincipalExtension;
import org.projectnessie.jaxrs.ext.ServerConfigExtension;
import org.projectnessie.jaxrs.ext.VersionStoreImplExtension;
import org.projectnessie.services.authz.AbstractBatchAccessChecker;
import org.projectnessie.services.impl.TreeApiImpl;
import org.projectnessie.services.rest.AccessCheckExceptionMapper;
import org.projectnessie.services.rest.BackendLimitExceededExceptionMapper;
import org.projectnessie.services.rest.RestConfigResource;
import org.projectnessie.services.rest.RestContentResource;
import org.projectnessie.services.rest.RestDiffResource;
import org.projectnessie.services.rest.RestNamespaceResource;
import org.projectnessie.services.rest.RestTreeResource;
import org.projectnessie.services.rest.RestV2ConfigResource;
import org.projectnessie.services.rest.RestV2TreeResource;
import org.projectnessie.services.rest.converters.ContentKeyParamConverterProvider;
import org.projectnessie.services.rest.converters.NamespaceParamConverterProvider;
import org.projectnessie.services.rest.converters.ReferenceTypeParamConverterProvider;
import org.projectnessie.services.rest.exceptions.ConstraintViolationExceptionMapper;
import org.projectnessie.services.rest.exceptions.NessieExceptionMapper;
import org.projectnessie.services.rest.exceptions.NessieJaxRsJsonMappingExceptionMapper;
import org.projectnessie.services.rest.exceptions.NessieJaxRsJsonParseExceptionMapper;
import org.projectnessie.services.rest.exceptions.NotSupportedExceptionMapper;
import org.projectnessie.services.rest.exceptions.ValidationExceptionMapper;
import org.projectnessie.versioned.storage.common.config.StoreConfig;
import org.projectnessie.versioned.storage.common.logic.Logics;
import org.projectnessie.versioned.storage.common.persist.Persist;
import org.projectnessie.versioned.storage.inmemory.InmemoryBackendFactory;

public final class NessieLocal {
  public static void main(String[] args) throws Exception {
    String host = args.length > 0 ? args[0] : "127.0.0.1";
    int port = args.length > 1 ? Integer.parseInt(args[1]) : 19120;

    InmemoryBackendFactory backends = new InmemoryBackendFactory();
    Persist persist =
        backends.buildBackend(backends.newConfigInstance())
            .createFactory()
            .newPersist(StoreConfig.Adjustable.empty());
    Logics.repositoryLogic(persist).initialize("main");

    Weld weld = new Weld();
    weld.addPackages(true, RestConfigResource.class);
    weld.addPackages(true, TreeApiImpl.class);
    weld.addExtension(new ContextPrincipalExtension(() -> null)); // anonymous: no auth locally
    weld.addExtension(new ServerConfigExtension());
    weld.addExtension(VersionStoreImplExtension.forPersist(() -> persist));
    weld.addExtension(
        new AuthorizerExtension()
            .setAccessCheckerSupplier(ctx -> AbstractBatchAccessChecker.NOOP_ACCESS_CHECKER));
    weld.property("org.jboss.weld.se.shutdownHook", false);
    weld.initialize();

    ResourceConfig config = new ResourceConfig();
    for (Class<?> resource :
        new Class<?>[] {
          RestV2ConfigResource.class, RestV2TreeResource.class, RestConfigResource.class,
          RestTreeResource.class, RestContentResource.class, RestDiffResource.class,
          RestNamespaceResource.class, ContentKeyParamConverterProvider.class,
          NamespaceParamConverterProvider.class, ReferenceTypeParamConverterProvider.class,
          NessieExceptionMapper.class, EncodingFilter.class, GZipEncoder.class, DeflateEncoder.class
        }) {
      config.register(resource);
    }
    for (Class<?> mapper :
        new Class<?>[] {
          ValidationExceptionMapper.class, AccessCheckExceptionMapper.class,
          ConstraintViolationExceptionMapper.class, BackendLimitExceededExceptionMapper.class,
          NotSupportedExceptionMapper.class, NessieJaxRsJsonParseExceptionMapper.class,
          NessieJaxRsJsonMappingExceptionMapper.class
        }) {
      config.register(mapper, 10);
    }

    // The resources carry the full paths (api/v1/..., api/v2/...).
    URI base = URI.create("http://" + host + ":" + port + "/");
    HttpServer server = GrizzlyHttpServerFactory.createHttpServer(base, config);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.shutdownNow();
                  weld.shutdown();
                  stopped.countDown();
                }));
    System.out.println("Nessie (in-memory) listening on " + base + "api/v2");
    stopped.await();
  }
}
