package statestore.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.AppInfoParser;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueBytesStoreSupplier;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * Kafka Streams restore benchmark, the Java side of statestore's restore comparison.
 *
 * <pre>
 * produce --bootstrap-servers S --topic T --partitions P --records N --keys K
 *         [--value-size V] [--input-topic I] [--key-order sequential|scattered]
 * restore --bootstrap-servers S --application-id A --store NAME --input-topic I
 *         --store-type rocksdb|memory --state-dir D [--threads 1] [--timeout-seconds 600]
 * </pre>
 *
 * Each mode prints one line of JSON on stdout; logs go to stderr at WARN. See README.md.
 */
public final class RestoreBench {

    private static final String USAGE = String.join("\n",
        "usage:",
        "  produce [--bootstrap-servers S] --topic T --partitions P --records N --keys K",
        "          [--value-size V (default 8: a big-endian double)] [--input-topic I]",
        "          [--key-order sequential|scattered (default sequential)]",
        "  restore [--bootstrap-servers S] --application-id A --store NAME --input-topic I",
        "          --store-type rocksdb|memory --state-dir D [--threads 1] [--timeout-seconds 600]",
        "S defaults to $KAFKA_BOOTSTRAP_SERVERS; restore reads the changelog A-NAME-changelog; D is wiped first.");

    private static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(60);

    private RestoreBench() {
    }

    public static void main(final String[] argv) {
        // Before any Kafka class asks slf4j for a logger: slf4j-simple at WARN on stderr
        // (a -D on the command line wins).
        setDefaultProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        setDefaultProperty("org.slf4j.simpleLogger.logFile", "System.err");
        setDefaultProperty("org.slf4j.simpleLogger.showDateTime", "true");
        setDefaultProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");

        int status;
        try {
            if (argv.length == 0) {
                throw new UsageException("missing mode");
            }
            final Args args = Args.parse(argv, 1);
            switch (argv[0]) {
                case "produce":
                    produce(args);
                    break;
                case "restore":
                    restore(args);
                    break;
                case "-h":
                case "--help":
                case "help":
                    System.out.println(USAGE);
                    break;
                default:
                    throw new UsageException("unknown mode '" + argv[0] + "'");
            }
            status = 0;
        } catch (final UsageException e) {
            System.err.println("kafka-streams-bench: " + e.getMessage());
            System.err.println(USAGE);
            status = 2;
        } catch (final Throwable e) {
            System.err.println("kafka-streams-bench: error: " + describe(e));
            if (Boolean.getBoolean("ksbench.debug")) {
                e.printStackTrace();
            } else {
                System.err.println("(run with JAVA_OPTS=-Dksbench.debug=true for the stack trace)");
            }
            status = 1;
        }
        System.out.flush();
        // Kafka client threads are not all daemons; never hang on the way out.
        System.exit(status);
    }

    // ------------------------------------------------------------- produce ----

    private static void produce(final Args args) throws Exception {
        args.allowOnly("bootstrap-servers", "topic", "partitions", "records", "keys", "value-size", "input-topic",
            "key-order");
        final String bootstrap = args.bootstrapServers();
        final String topic = args.required("topic");
        final int partitions = (int) args.requiredLong("partitions", 1, Integer.MAX_VALUE);
        final long records = args.requiredLong("records", 0, Long.MAX_VALUE);
        final long keys = args.requiredLong("keys", 1, Long.MAX_VALUE);
        final int valueSize = (int) args.optionalLong("value-size", 8, 0, 64 * 1024 * 1024);
        final String inputTopic = args.optional("input-topic", null);
        // Record i updates key i mod K. Sequential: customer-0, customer-1, ... in turn, so a
        // run of records touches neighbouring keys. Scattered: each round over the keys visits
        // them in a fixed pseudo-random order (i mod K times a prime coprime to K, mod K), as
        // independent customers' updates arrive in a changelog.
        final String keyOrder = args.optional("key-order", "sequential");
        final boolean scattered;
        switch (keyOrder) {
            case "sequential" -> scattered = false;
            case "scattered" -> scattered = true;
            default -> throw new BenchException("--key-order must be sequential or scattered, not '" + keyOrder + "'");
        }
        final long stride = coprimeStride(keys);

        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            ensureTopic(admin, topic, partitions, Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT));
            if (inputTopic != null) {
                ensureTopic(admin, inputTopic, partitions, Map.of());
            }
        }

        final Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "ksbench-producer");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 20);
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024);
        props.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 64L * 1024 * 1024);
        // Like Kafka Streams' changelog producer by default: no compression.
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);

        // The exact bytes Serdes.String() and Serdes.Double() write; the default partitioner
        // hashes these key bytes (murmur2), as Kafka Streams' changelog producer does.
        final var keySerializer = Serdes.String().serializer();
        final var doubleSerializer = Serdes.Double().serializer();
        final Random random = new Random(42);
        final AtomicReference<Exception> sendError = new AtomicReference<>();
        final AtomicLong acked = new AtomicLong();

        final long started = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (long i = 0; i < records; i++) {
                final long k = scattered ? Math.multiplyExact(i % keys, stride) % keys : i % keys;
                final byte[] key = keySerializer.serialize(topic, "customer-" + k);
                final byte[] value;
                if (valueSize == 8) {
                    value = doubleSerializer.serialize(topic, (double) i);
                } else {
                    value = new byte[valueSize];
                    random.nextBytes(value);
                }
                producer.send(new ProducerRecord<>(topic, key, value), (metadata, e) -> {
                    if (e != null) {
                        sendError.compareAndSet(null, e);
                    } else {
                        acked.incrementAndGet();
                    }
                });
                if ((i & 0xFFFF) == 0 && sendError.get() != null) {
                    break;
                }
            }
            producer.flush();
        }
        final long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        if (sendError.get() != null) {
            throw new BenchException("producing to " + topic + " failed after " + acked.get() + " acknowledged records: "
                + describe(sendError.get()), sendError.get());
        }
        if (acked.get() != records) {
            throw new BenchException("only " + acked.get() + " of " + records + " records were acknowledged");
        }

        final Json json = new Json()
            .put("mode", "produce")
            .put("topic", topic)
            .put("input_topic", inputTopic)
            .put("partitions", partitions)
            .put("records", records)
            .put("keys", keys)
            .put("value_size", valueSize)
            .put("key_order", keyOrder)
            .put("millis", millis)
            .put("kafka_clients_version", AppInfoParser.getVersion());
        System.out.println(json);
    }

    /** Creates the topic, or checks that the existing one has the expected partition count. */
    private static void ensureTopic(final Admin admin, final String topic, final int partitions,
                                    final Map<String, String> configs) throws Exception {
        final NewTopic newTopic = new NewTopic(topic, partitions, (short) 1).configs(configs);
        try {
            admin.createTopics(List.of(newTopic)).all().get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            return;
        } catch (final ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw new BenchException("could not create topic " + topic + ": " + describe(e.getCause()), e.getCause());
            }
        }
        final int existing = partitionCount(admin, topic);
        if (existing != partitions) {
            throw new BenchException("topic " + topic + " already exists with " + existing
                + " partitions, not " + partitions + "; delete it or pick another name");
        }
        if (!configs.isEmpty()) {
            System.err.println("kafka-streams-bench: note: topic " + topic + " already exists with " + partitions
                + " partitions; appending to it (a later restore reads its old records too)");
        }
    }

    /** The topic's partition count; throws a clear error when it does not exist. */
    private static int partitionCount(final Admin admin, final String topic) throws Exception {
        try {
            final TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames()
                .get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).get(topic);
            return description.partitions().size();
        } catch (final ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                return -1;
            }
            throw new BenchException("could not describe topic " + topic + ": " + describe(e.getCause()), e.getCause());
        }
    }

    // ------------------------------------------------------------- restore ----

    private static void restore(final Args args) throws Exception {
        args.allowOnly("bootstrap-servers", "application-id", "store", "input-topic", "store-type", "state-dir",
            "threads", "timeout-seconds");
        final String bootstrap = args.bootstrapServers();
        final String applicationId = args.required("application-id");
        final String storeName = args.required("store");
        final String inputTopic = args.required("input-topic");
        final String storeType = args.required("store-type");
        final Path stateDir = Paths.get(args.required("state-dir")).toAbsolutePath().normalize();
        final int threads = (int) args.optionalLong("threads", 1, 1, 64);
        final long timeoutSeconds = args.optionalLong("timeout-seconds", 600, 1, 24 * 3600);
        final KeyValueBytesStoreSupplier supplier;
        switch (storeType) {
            case "rocksdb":
                supplier = Stores.persistentKeyValueStore(storeName);
                break;
            case "memory":
                supplier = Stores.inMemoryKeyValueStore(storeName);
                break;
            default:
                throw new UsageException("--store-type must be rocksdb or memory, not '" + storeType + "'");
        }
        final String changelog = applicationId + "-" + storeName + "-changelog";
        checkWipeable(stateDir);

        final int partitions;
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            partitions = partitionCount(admin, inputTopic);
            if (partitions < 0) {
                throw new BenchException("input topic " + inputTopic + " does not exist (produce --input-topic creates it)");
            }
            final int changelogPartitions = partitionCount(admin, changelog);
            if (changelogPartitions < 0) {
                System.err.println("kafka-streams-bench: note: changelog " + changelog
                    + " does not exist; Kafka Streams will create it empty and nothing is restored");
            } else if (changelogPartitions != partitions) {
                throw new BenchException("changelog " + changelog + " has " + changelogPartitions
                    + " partitions but input topic " + inputTopic + " has " + partitions + "; they must match");
            }
            // A member left over from a killed run would hold up the first rebalance until its
            // session times out (45 s).
            removeGroupMembers(admin, applicationId, "left over from an earlier run");
        }

        wipeStateDir(stateDir);

        final StoreBuilder<KeyValueStore<String, Double>> storeBuilder =
            Stores.keyValueStoreBuilder(supplier, Serdes.String(), Serdes.Double())
                .withLoggingEnabled(Map.of());
        final StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(storeBuilder);
        builder.stream(inputTopic, Consumed.with(Serdes.String(), Serdes.Double()))
            .process(() -> new StoreWriter(storeName), storeName);

        // Only what the app needs; everything that affects restore speed stays at Kafka
        // Streams' defaults on purpose.
        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);

        final RestoreTracker tracker = new RestoreTracker(changelog, partitions);
        final KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.setGlobalStateRestoreListener(tracker);
        streams.setStateListener((newState, oldState) -> tracker.onState(newState));
        streams.setUncaughtExceptionHandler(e -> {
            tracker.onError(e);
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });

        final RestoreTracker.Outcome outcome;
        final long startNanos;
        boolean closed = false;
        try {
            startNanos = System.nanoTime();
            streams.start();
            outcome = tracker.await(startNanos + TimeUnit.SECONDS.toNanos(timeoutSeconds));
        } finally {
            // Kafka Streams 4.1's KafkaStreams.CloseOptions#leaveGroup only removes static
            // members (group.instance.id); the dynamic member's consumer closes without a
            // LeaveGroup (internal.leave.group.on.close=false), so it is removed below; otherwise
            // the next run with this application id waits out session.timeout.ms (45 s).
            closed = streams.close(new KafkaStreams.CloseOptions().leaveGroup(true).timeout(CLOSE_TIMEOUT));
            try (Admin admin = Admin.create(adminProps(bootstrap))) {
                removeGroupMembers(admin, applicationId, "still in the group after close");
            } catch (final Exception e) {
                System.err.println("kafka-streams-bench: warning: " + describe(e)
                    + " (the next run with this application id may wait for the session timeout)");
            }
        }
        if (!closed) {
            throw new BenchException("Kafka Streams did not close within " + CLOSE_TIMEOUT.toSeconds() + " s");
        }
        outcome.throwIfFailed();

        final Json json = new Json()
            .put("mode", "restore")
            .put("store_type", storeType)
            .put("application_id", applicationId)
            .put("changelog", changelog)
            .put("threads", threads)
            .put("partitions", partitions)
            .put("records", outcome.totalRecords())
            .put("millis", outcome.restoreMillis())
            .put("startup_millis", outcome.startupMillis(startNanos))
            .put("suspended", outcome.suspended)
            .putRaw("per_partition", outcome.perPartitionJson())
            .putRaw("restore_threads", Json.array(outcome.restoreThreads))
            .put("kafka_streams_version", kafkaStreamsVersion())
            .put("kafka_clients_version", AppInfoParser.getVersion())
            .put("rocksdbjni_version", rocksdbVersion())
            .put("rocksdbjni_jar", jarName(org.rocksdb.RocksDB.class));
        System.out.println(json);
    }

    /** Removes every member of the group (used for the benchmark's own application id only). */
    private static void removeGroupMembers(final Admin admin, final String groupId, final String why) throws Exception {
        final ConsumerGroupDescription group;
        try {
            group = admin.describeConsumerGroups(List.of(groupId)).describedGroups().get(groupId)
                .get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (final ExecutionException e) {
            if (e.getCause() instanceof GroupIdNotFoundException) {
                return;
            }
            throw new BenchException("could not describe consumer group " + groupId + ": " + describe(e.getCause()),
                e.getCause());
        }
        if (group.members().isEmpty()) {
            return;
        }
        try {
            admin.removeMembersFromConsumerGroup(groupId, new RemoveMembersFromConsumerGroupOptions()).all()
                .get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (final ExecutionException e) {
            throw new BenchException("could not remove the members of consumer group " + groupId + ": "
                + describe(e.getCause()), e.getCause());
        }
        System.err.println("kafka-streams-bench: note: removed " + group.members().size() + " member(s) " + why
            + " from group " + groupId);
    }

    /** Refuses obviously wrong state dirs: /, the home directory, the working directory or its parents. */
    private static void checkWipeable(final Path dir) {
        final Path cwd = Paths.get("").toAbsolutePath().normalize();
        final Path home = Paths.get(System.getProperty("user.home")).toAbsolutePath().normalize();
        if (dir.getParent() == null || cwd.startsWith(dir) || home.startsWith(dir)) {
            throw new BenchException("refusing to wipe state dir " + dir
                + " (it is /, the home directory or contains the working directory)");
        }
    }

    /** Deletes the throwaway state directory and recreates it empty. */
    private static void wipeStateDir(final Path dir) throws IOException {
        checkWipeable(dir);
        if (Files.exists(dir)) {
            try (Stream<Path> paths = Files.walk(dir)) {
                for (final Path path : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
                    Files.delete(path);
                }
            }
        }
        Files.createDirectories(dir);
    }

    /** The processor owning the store; the input topic stays empty, so it never runs. */
    private static final class StoreWriter implements Processor<String, Double, Void, Void> {
        private final String storeName;
        private KeyValueStore<String, Double> store;

        StoreWriter(final String storeName) {
            this.storeName = storeName;
        }

        @Override
        public void init(final ProcessorContext<Void, Void> context) {
            store = context.getStateStore(storeName);
        }

        @Override
        public void process(final Record<String, Double> record) {
            store.put(record.key(), record.value());
        }
    }

    // ------------------------------------------------------ restore tracker ----

    /** Records the restore listener's callbacks per changelog partition, with nanoTime stamps. */
    private static final class RestoreTracker implements StateRestoreListener {
        private final String changelog;
        private final int expectedPartitions;
        // All fields below are guarded by this.
        private final Map<Integer, PartitionRestore> restores = new TreeMap<>();
        private final Set<String> foreignTopics = new java.util.TreeSet<>();
        private final Set<String> restoreThreads = new java.util.TreeSet<>();
        private KafkaStreams.State state = KafkaStreams.State.CREATED;
        private Throwable error;
        private int suspended;

        RestoreTracker(final String changelog, final int expectedPartitions) {
            this.changelog = changelog;
            this.expectedPartitions = expectedPartitions;
        }

        private PartitionRestore of(final TopicPartition tp) {
            if (!tp.topic().equals(changelog)) {
                foreignTopics.add(tp.topic());
            }
            return restores.computeIfAbsent(tp.partition(), p -> new PartitionRestore());
        }

        @Override
        public synchronized void onRestoreStart(final TopicPartition tp, final String store,
                                                final long startingOffset, final long endingOffset) {
            final PartitionRestore r = of(tp);
            if (r.startNanos < 0) {
                r.startNanos = System.nanoTime();
            }
            r.startOffset = startingOffset;
            r.endOffset = endingOffset;
            notifyAll();
        }

        @Override
        public synchronized void onBatchRestored(final TopicPartition tp, final String store,
                                                 final long batchEndOffset, final long numRestored) {
            final PartitionRestore r = of(tp);
            restoreThreads.add(Thread.currentThread().getName());
            r.batches++;
            r.batchRecords += numRestored;
        }

        @Override
        public synchronized void onRestoreEnd(final TopicPartition tp, final String store, final long totalRestored) {
            final PartitionRestore r = of(tp);
            r.endNanos = System.nanoTime();
            r.totalRestored = totalRestored;
            notifyAll();
        }

        @Override
        public synchronized void onRestoreSuspended(final TopicPartition tp, final String store,
                                                    final long totalRestored) {
            suspended++;
            System.err.println("kafka-streams-bench: warning: restore of " + tp + " suspended after " + totalRestored
                + " records (a rebalance during the restore; timings are not comparable)");
            notifyAll();
        }

        synchronized void onState(final KafkaStreams.State newState) {
            state = newState;
            notifyAll();
        }

        synchronized void onError(final Throwable e) {
            if (error == null) {
                error = e;
            }
            notifyAll();
        }

        private boolean allEnded() {
            if (restores.isEmpty()) {
                return false;
            }
            for (final PartitionRestore r : restores.values()) {
                if (r.endNanos < 0) {
                    return false;
                }
            }
            return true;
        }

        /**
         * Waits until every partition's restore ended (or the client is RUNNING: its stream
         * threads only get there once all active tasks are restored), a failure, or the deadline.
         */
        synchronized Outcome await(final long deadlineNanos) throws InterruptedException {
            String failure = null;
            while (true) {
                if (error != null) {
                    failure = "Kafka Streams failed: " + describe(error);
                    break;
                }
                if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.PENDING_ERROR
                    || state == KafkaStreams.State.NOT_RUNNING || state == KafkaStreams.State.PENDING_SHUTDOWN) {
                    failure = "Kafka Streams stopped unexpectedly (state " + state + ")";
                    break;
                }
                if (allEnded() && restores.size() >= expectedPartitions) {
                    break;
                }
                if (state == KafkaStreams.State.RUNNING) {
                    if (!restores.isEmpty() && !allEnded()) {
                        failure = "Kafka Streams is RUNNING but the restore of partitions " + unfinished()
                            + " has not ended";
                    } else if (!restores.isEmpty() && restores.size() < expectedPartitions) {
                        System.err.println("kafka-streams-bench: warning: only " + restores.size() + " of "
                            + expectedPartitions + " changelog partitions were restored");
                    }
                    break;
                }
                final long remaining = deadlineNanos - System.nanoTime();
                if (remaining <= 0) {
                    failure = "timed out: state " + state + ", " + restores.size() + " of " + expectedPartitions
                        + " partitions started restoring, unfinished " + unfinished();
                    break;
                }
                TimeUnit.NANOSECONDS.timedWait(this, remaining);
            }
            if (failure == null && !foreignTopics.isEmpty()) {
                failure = "restore listener saw unexpected changelog topics " + foreignTopics;
            }
            final Map<Integer, PartitionRestore> copy = new TreeMap<>();
            restores.forEach((p, r) -> copy.put(p, r.copy()));
            return new Outcome(copy, List.copyOf(restoreThreads), suspended, failure, error);
        }

        private List<Integer> unfinished() {
            final List<Integer> out = new ArrayList<>();
            restores.forEach((p, r) -> {
                if (r.endNanos < 0) {
                    out.add(p);
                }
            });
            return out;
        }

        static final class PartitionRestore {
            long startNanos = -1;
            long endNanos = -1;
            long startOffset = -1;
            long endOffset = -1;
            long batches;
            long batchRecords;
            long totalRestored;

            PartitionRestore copy() {
                final PartitionRestore c = new PartitionRestore();
                c.startNanos = startNanos;
                c.endNanos = endNanos;
                c.startOffset = startOffset;
                c.endOffset = endOffset;
                c.batches = batches;
                c.batchRecords = batchRecords;
                c.totalRestored = totalRestored;
                return c;
            }
        }

        static final class Outcome {
            final Map<Integer, PartitionRestore> restores;
            final List<String> restoreThreads;
            final int suspended;
            final String failure;
            final Throwable error;

            Outcome(final Map<Integer, PartitionRestore> restores, final List<String> restoreThreads,
                    final int suspended, final String failure, final Throwable error) {
                this.restores = restores;
                this.restoreThreads = restoreThreads;
                this.suspended = suspended;
                this.failure = failure;
                this.error = error;
            }

            void throwIfFailed() {
                if (failure != null) {
                    throw new BenchException(failure, error);
                }
            }

            long totalRecords() {
                return restores.values().stream().mapToLong(r -> r.totalRestored).sum();
            }

            /** Last onRestoreEnd minus first onRestoreStart, in ms; 0 when nothing was restored. */
            long restoreMillis() {
                final long first = restores.values().stream().mapToLong(r -> r.startNanos).min().orElse(-1);
                final long last = restores.values().stream().mapToLong(r -> r.endNanos).max().orElse(-1);
                return first < 0 || last < 0 ? 0 : nanosToMillis(last - first);
            }

            /** start() to the first onRestoreStart, in ms; null when no restore started. */
            Long startupMillis(final long startNanos) {
                final long first = restores.values().stream().mapToLong(r -> r.startNanos).min().orElse(-1);
                return first < 0 ? null : nanosToMillis(first - startNanos);
            }

            String perPartitionJson() {
                final StringBuilder sb = new StringBuilder("[");
                restores.forEach((p, r) -> {
                    if (sb.length() > 1) {
                        sb.append(',');
                    }
                    sb.append(new Json()
                        .put("partition", p)
                        .put("records", r.totalRestored)
                        .put("millis", nanosToMillis(r.endNanos - r.startNanos))
                        .put("start_offset", r.startOffset)
                        .put("end_offset", r.endOffset)
                        .put("batches", r.batches)
                        .put("batch_records", r.batchRecords));
                });
                return sb.append(']').toString();
            }
        }
    }

    private static long nanosToMillis(final long nanos) {
        return Math.round(nanos / 1e6);
    }

    // ------------------------------------------------------------- helpers ----

    private static Properties adminProps(final String bootstrap) {
        final Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "ksbench-admin");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) ADMIN_TIMEOUT.toMillis());
        return props;
    }

    /** Kafka Streams' own version file (kafka-streams.jar's kafka/kafka-streams-version.properties). */
    private static String kafkaStreamsVersion() {
        try (InputStream in = KafkaStreams.class.getResourceAsStream("/kafka/kafka-streams-version.properties")) {
            if (in != null) {
                final Properties props = new Properties();
                props.load(in);
                return props.getProperty("version", "unknown");
            }
        } catch (final IOException e) {
            // fall through
        }
        return "unknown";
    }

    /** The RocksDB version of the rocksdbjni native library on the classpath (loads it). */
    private static String rocksdbVersion() {
        try {
            org.rocksdb.RocksDB.loadLibrary();
            return org.rocksdb.RocksDB.rocksdbVersion().toString();
        } catch (final Throwable e) {
            return "unknown (" + describe(e) + ")";
        }
    }

    /** The file name of the jar a class was loaded from, or null. */
    private static String jarName(final Class<?> cls) {
        try {
            return Paths.get(cls.getProtectionDomain().getCodeSource().getLocation().toURI()).getFileName().toString();
        } catch (final Exception e) {
            return null;
        }
    }

    private static void setDefaultProperty(final String key, final String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    /** The exception's message followed by its causes' (class names where a message is missing). */
    static String describe(final Throwable e) {
        final StringBuilder sb = new StringBuilder();
        Throwable t = e;
        for (int depth = 0; t != null && depth < 8; depth++, t = t.getCause()) {
            if (t instanceof ExecutionException && t.getCause() != null) {
                continue;
            }
            if (sb.length() > 0) {
                sb.append(": caused by ");
            }
            if (t instanceof BenchException) {
                sb.append(t.getMessage());
            } else {
                sb.append(t.getMessage() == null ? t.getClass().getName() : t.getClass().getSimpleName() + ": " + t.getMessage());
            }
            if (t.getCause() == t) {
                break;
            }
        }
        return sb.toString();
    }

    private static final class UsageException extends RuntimeException {
        UsageException(final String message) {
            super(message);
        }
    }

    /** A stride near the golden section of {@code keys} that shares no factor with it, so
     *  {@code j * stride mod keys} visits every key once per round and neighbours far apart. */
    static long coprimeStride(final long keys) {
        long stride = Math.max(1, (long) (keys * 0.6180339887));
        while (java.math.BigInteger.valueOf(stride).gcd(java.math.BigInteger.valueOf(keys)).longValue() != 1) {
            stride++;
        }
        return stride;
    }

    private static final class BenchException extends RuntimeException {
        BenchException(final String message) {
            super(message);
        }

        BenchException(final String message, final Throwable cause) {
            super(message, cause);
        }
    }

    /** `--name value` / `--name=value` options. */
    private static final class Args {
        private final Map<String, String> values = new LinkedHashMap<>();

        static Args parse(final String[] argv, final int from) {
            final Args args = new Args();
            for (int i = from; i < argv.length; i++) {
                final String arg = argv[i];
                if (!arg.startsWith("--") || arg.length() == 2) {
                    throw new UsageException("unexpected argument '" + arg + "'");
                }
                final String name;
                final String value;
                final int eq = arg.indexOf('=');
                if (eq > 0) {
                    name = arg.substring(2, eq);
                    value = arg.substring(eq + 1);
                } else {
                    if (i + 1 >= argv.length) {
                        throw new UsageException("option " + arg + " needs a value");
                    }
                    name = arg.substring(2);
                    value = argv[++i];
                }
                if (args.values.put(name, value) != null) {
                    throw new UsageException("option --" + name + " given twice");
                }
            }
            return args;
        }

        void allowOnly(final String... names) {
            final Set<String> allowed = Set.of(names);
            for (final String name : values.keySet()) {
                if (!allowed.contains(name)) {
                    throw new UsageException("unknown option --" + name);
                }
            }
        }

        String required(final String name) {
            final String value = values.get(name);
            if (value == null || value.isEmpty()) {
                throw new UsageException("missing --" + name);
            }
            return value;
        }

        /** --bootstrap-servers, else $KAFKA_BOOTSTRAP_SERVERS (what scripts/kafka.sh start prints). */
        String bootstrapServers() {
            final String value = values.get("bootstrap-servers");
            if (value != null && !value.isEmpty()) {
                return value;
            }
            final String env = System.getenv("KAFKA_BOOTSTRAP_SERVERS");
            if (env != null && !env.isEmpty()) {
                return env;
            }
            throw new UsageException("missing --bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS)");
        }

        String optional(final String name, final String fallback) {
            return values.getOrDefault(name, fallback);
        }

        long requiredLong(final String name, final long min, final long max) {
            return toLong(name, required(name), min, max);
        }

        long optionalLong(final String name, final long fallback, final long min, final long max) {
            final String value = values.get(name);
            return value == null ? fallback : toLong(name, value, min, max);
        }

        private static long toLong(final String name, final String value, final long min, final long max) {
            final long parsed;
            try {
                parsed = Long.parseLong(value.replace("_", ""));
            } catch (final NumberFormatException e) {
                throw new UsageException("--" + name + " must be an integer, not '" + value + "'");
            }
            if (parsed < min || parsed > max) {
                throw new UsageException("--" + name + " must be in [" + min + ", " + max + "], not " + parsed);
            }
            return parsed;
        }
    }

    /** A flat JSON object, fields in insertion order. */
    private static final class Json {
        private final Map<String, String> fields = new LinkedHashMap<>();

        Json put(final String key, final Object value) {
            final String encoded;
            if (value == null) {
                encoded = "null";
            } else if (value instanceof Number || value instanceof Boolean) {
                encoded = value.toString();
            } else {
                encoded = quote(value.toString());
            }
            fields.put(key, encoded);
            return this;
        }

        Json putRaw(final String key, final String json) {
            fields.put(key, json);
            return this;
        }

        @Override
        public String toString() {
            final StringBuilder sb = new StringBuilder("{");
            fields.forEach((k, v) -> {
                if (sb.length() > 1) {
                    sb.append(',');
                }
                sb.append(quote(k)).append(':').append(v);
            });
            return sb.append('}').toString();
        }

        static String array(final List<String> values) {
            final StringBuilder sb = new StringBuilder("[");
            for (final String v : values) {
                if (sb.length() > 1) {
                    sb.append(',');
                }
                sb.append(quote(v));
            }
            return sb.append(']').toString();
        }

        private static String quote(final String s) {
            final StringBuilder sb = new StringBuilder("\"");
            for (int i = 0; i < s.length(); i++) {
                final char c = s.charAt(i);
                switch (c) {
                    case '"':
                        sb.append("\\\"");
                        break;
                    case '\\':
                        sb.append("\\\\");
                        break;
                    case '\n':
                        sb.append("\\n");
                        break;
                    case '\r':
                        sb.append("\\r");
                        break;
                    case '\t':
                        sb.append("\\t");
                        break;
                    default:
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                }
            }
            return sb.append('"').toString();
        }
    }
}
