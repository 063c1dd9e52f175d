import type { TestProject } from 'vitest/node';
import { packagedArtefact, templateOf } from '../../scripts/local/artefact.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Packaged CloudFormation templates, one per stage whose parameters the template tests compare. */
    cfnTemplates: { dev: string; prod: string };
    /** The folders `osls package` wrote each stage's zips (the bundles Lambda runs) and template to. */
    artefactDirs: { dev: string; prod: string };
  }
}

/**
 * Vitest globalSetup of every project that reads the deployable artefact: package dev and prod once
 * per run (test/support/artefact.ts), shared between projects. Any failure stops the project with the
 * packager's own output.
 */
export async function setup(project: TestProject): Promise<void> {
  const artefact = await packagedArtefact();
  project.provide('cfnTemplates', { dev: templateOf(artefact.dev), prod: templateOf(artefact.prod) });
  project.provide('artefactDirs', artefact);
}
