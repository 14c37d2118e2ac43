export * from './record.enums';
export {
  FIELD_CATALOG,
  fieldsFor,
  findField,
  type FieldKind,
  type FieldSpec,
  type FieldUses,
} from './field-catalog';
