import { z } from 'zod';

/**
 * `tracing:` (README "Tracing"): OpenTelemetry traces over OTLP/HTTP. Absent: tracing is off
 * and costs nothing (no tracer is built). A reload does not change it: a restart does.
 */
export const tracingSchema = z
  .object({
    /** The collector's OTLP/HTTP base URL; spans are POSTed to {otlpEndpoint}/v1/traces. */
    otlpEndpoint: z
      .string()
      .url('expected an http(s) URL such as http://otel-collector:4318')
      .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL such as http://otel-collector:4318'),
    /** Share of new traces sampled (0..1). A caller's sampled traceparent is always followed. */
    sampleRatio: z.number().min(0, 'from 0 to 1').max(1, 'from 0 to 1').default(1),
    serviceName: z.string().min(1).default('countersign'),
  })
  .strict();

export type TracingConfig = z.infer<typeof tracingSchema>;
